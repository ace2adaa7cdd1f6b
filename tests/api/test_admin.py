"""POST /admin/tenants: onboarding over HTTP, guarded by the admin token."""

from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from tenancy.naming import tenant_schema
from tenancy.settings import TenancySettings
from tenancy.testing.servers import client
from tests.support.common import row_counts, running_server, schema_names
from tests.support.project import ADMIN_TOKEN, make_settings

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_admin_creates_a_tenant_whose_key_works(api: str, new_slug: str) -> None:
    async with client(api) as http:
        response = await http.post(
            "/admin/tenants", json={"slug": new_slug, "display_name": "Acme"}, headers=ADMIN
        )
        assert response.status_code == 201
        body = response.json()
        assert body["slug"] == new_slug
        assert body["schema_name"] == tenant_schema(new_slug)
        headers = {"X-Tenant-ID": new_slug, "Authorization": f"Bearer {body['api_key']}"}
        assert (
            await http.post("/todos", json={"content": "hi"}, headers=headers)
        ).status_code == 201


async def test_admin_refuses_a_wrong_or_missing_token(api: str, new_slug: str) -> None:
    async with client(api) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}):
            response = await http.post("/admin/tenants", json={"slug": new_slug}, headers=headers)
            assert response.status_code == 401
            assert response.json()["type"].endswith("/unauthorized")


async def test_admin_routes_are_closed_when_no_token_is_configured(
    database: str, new_slug: str
) -> None:
    settings = make_settings(database, admin_token=None)
    async with running_server(create_app(settings)) as base_url, client(base_url) as http:
        for token in ("x", "None", ADMIN_TOKEN):
            response = await http.post(
                "/admin/tenants",
                json={"slug": new_slug},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 401


async def test_invalid_and_duplicate_slugs_leave_nothing_behind(
    api: str, engine: AsyncEngine, settings: TenancySettings, new_slug: str
) -> None:
    async with client(api) as http:
        assert (
            await http.post("/admin/tenants", json={"slug": new_slug}, headers=ADMIN)
        ).status_code == 201
        schemas = await schema_names(engine)
        rows = await row_counts(engine)
        expected = {
            "public": (422, "invalid-slug"),
            "pg_catalog": (422, "invalid-slug"),
            "Acme": (422, "invalid-slug"),
            "a": (422, "invalid-slug"),
            "a'; drop": (422, "invalid-slug"),
            "x" * 41: (422, "validation-error"),  # the body model's max_length, before the rule
            new_slug: (409, "conflict"),
        }
        for slug, (status, kind) in expected.items():
            response = await http.post("/admin/tenants", json={"slug": slug}, headers=ADMIN)
            assert response.headers["content-type"] == "application/problem+json"
            answer = response.status_code, response.json()["type"].rsplit("/", 1)[-1]
            assert answer == (status, kind), slug
        duplicate = await http.post("/admin/tenants", json={"slug": new_slug}, headers=ADMIN)
        assert duplicate.json()["type"].endswith("/conflict")
    assert await schema_names(engine) == schemas
    assert await row_counts(engine) == rows
