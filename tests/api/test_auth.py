"""Who gets in: the tenant header, the API key, suspension; hostile input is refused and
changes nothing."""

import asyncio
import json

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.lifecycle.api_keys import create_key, revoke_key
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.lifecycle.status import set_status
from tenancy.testing.servers import client, tenant_headers
from tests.support.common import raw_request, row_counts, schema_names

PROBLEM = "application/problem+json"

HOSTILE_TENANT_HEADERS: list[bytes] = [
    b"",
    b" ",
    b"'",
    b'"',
    b"acme'; DROP SCHEMA public CASCADE; --",
    b'tenant_x"; DROP SCHEMA tenantry; --',
    b"acme;",
    b"public",
    b"pg_catalog",
    b"information_schema",
    b"tenantry",
    b"tenant_acme",
    b"ACME",
    b"../acme",
    b"acme/../../etc",
    b"a" * 1024,
    b"acme\x00",
    "\u0430cme".encode(),  # Cyrillic a
    "\uff41\uff43\uff4d\uff45".encode(),  # fullwidth "acme"
    b"\xff\xfe",
    b"%61cme",
]


async def _wait_for_status(api: str, headers: dict[str, str], status: int) -> int:
    """Registry changes reach the API through NOTIFY; give them a moment to arrive."""
    async with client(api) as http:
        for _ in range(50):
            got = (await http.get("/todos", headers=headers)).status_code
            if got == status:
                return got
            await asyncio.sleep(0.05)
    return got


async def test_the_tenants_own_key_gets_in(api: str, tenant: CreatedTenant) -> None:
    async with client(api, tenant.slug, tenant.api_key) as http:
        assert (await http.get("/todos")).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic abc", "Bearer tnt_000000000000_nope", "Bearer x" * 100],
)
async def test_missing_or_wrong_key_is_401(
    api: str, tenant: CreatedTenant, authorization: str | None
) -> None:
    headers = {"X-Tenant-ID": tenant.slug}
    if authorization is not None:
        headers["Authorization"] = authorization
    async with client(api) as http:
        response = await http.get("/todos", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/unauthorized")


async def test_another_tenants_key_is_401_on_every_route(
    api: str, tenant: CreatedTenant, other_tenant: CreatedTenant
) -> None:
    headers = tenant_headers(tenant.slug, other_tenant.api_key)
    async with client(api) as http:
        for method, path in [
            ("GET", "/todos"),
            ("POST", "/todos"),
            ("GET", "/todos/1"),
            ("PUT", "/todos/1"),
            ("DELETE", "/todos/1"),
            ("GET", "/users"),
            ("POST", "/users"),
            ("GET", "/songs"),
            ("POST", "/songs"),
        ]:
            response = await http.request(method, path, headers=headers, json={"content": "x"})
            assert response.status_code == 401, (method, path)


async def test_unknown_tenant_gets_the_same_401_as_a_wrong_key(
    api: str, tenant: CreatedTenant
) -> None:
    async with client(api) as http:
        unknown = await http.get("/todos", headers=tenant_headers("nobody-here", tenant.api_key))
        wrong = await http.get("/todos", headers=tenant_headers(tenant.slug, "tnt_0_x"))
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    assert unknown.headers["www-authenticate"] == wrong.headers["www-authenticate"]


async def test_revoked_key_is_401_and_a_second_key_keeps_working(
    api: str, engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    second = await create_key(engine, tenant.slug)
    old = tenant_headers(tenant.slug, tenant.api_key)
    assert await _wait_for_status(api, old, 200) == 200
    await revoke_key(engine, tenant.key_id)
    assert await _wait_for_status(api, old, 401) == 401
    new = tenant_headers(tenant.slug, second.token)
    assert await _wait_for_status(api, new, 200) == 200


async def test_suspended_tenant_is_403_and_resumes(
    api: str, engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    headers = tenant_headers(tenant.slug, tenant.api_key)
    assert await _wait_for_status(api, headers, 200) == 200
    await set_status(engine, tenant.slug, "suspended")
    assert await _wait_for_status(api, headers, 403) == 403
    async with client(api) as http:
        response = await http.get("/todos", headers=headers)
    assert response.json()["type"].endswith("/tenant-suspended")
    await set_status(engine, tenant.slug, "active")
    assert await _wait_for_status(api, headers, 200) == 200


async def test_suspension_is_not_revealed_without_a_valid_key(
    api: str, engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    await set_status(engine, tenant.slug, "suspended")
    headers = tenant_headers(tenant.slug, "tnt_000000000000_wrong")
    assert await _wait_for_status(api, headers, 401) == 401


async def test_missing_tenant_header_is_400(api: str) -> None:
    async with client(api) as http:
        response = await http.get("/todos")
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/invalid-tenant-header")


async def test_hostile_tenant_headers_are_400_and_change_nothing(
    api: str, engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    schemas_before = await schema_names(engine)
    rows_before = await row_counts(engine)
    reached_the_app = 0
    for value in HOSTILE_TENANT_HEADERS:
        for method, path in [("GET", "/todos"), ("POST", "/todos")]:
            status, headers, body = await raw_request(
                api,
                method,
                path,
                [(b"X-Tenant-ID", value), (b"Authorization", b"Bearer " + tenant.api_key.encode())],
                json.dumps({"content": "should never be written"}).encode(),
            )
            assert status == 400, (value, body)
            if headers.get("content-type") == PROBLEM:  # else uvicorn refused the bytes itself
                assert json.loads(body)["type"].endswith("/invalid-tenant-header")
                reached_the_app += 1
    assert reached_the_app >= 2 * (len(HOSTILE_TENANT_HEADERS) - 2)
    assert await schema_names(engine) == schemas_before
    assert await row_counts(engine) == rows_before
