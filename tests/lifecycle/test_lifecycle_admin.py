"""The admin API's lifecycle routes: the CLI's operations over HTTP, errors as problem+json."""

import pytest

from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.migrate.tracks import Tracks
from tenancy.testing.servers import client
from tests.support.project import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_tenant_routes_walk_the_whole_lifecycle(
    api: str, tracks: Tracks, tenant: CreatedTenant
) -> None:
    base = f"/admin/tenants/{tenant.slug}"
    async with client(api) as http, client(api, tenant.slug, tenant.api_key) as own:
        shown = (await http.get(base, headers=ADMIN)).json()
        assert (shown["status"], shown["revision"], shown["schema_name"]) == (
            "active",
            tracks.tenant_head,
            tenant.schema,
        )
        assert shown["size_bytes"] > 0
        listed = (await http.get("/admin/tenants", headers=ADMIN)).json()
        assert shown in listed

        assert (await http.post(f"{base}/suspend", headers=ADMIN)).json()["status"] == "suspended"
        assert (await http.post(f"{base}/resume", headers=ADMIN)).json()["status"] == "active"
        archived = (await http.delete(base, headers=ADMIN)).json()
        assert archived["status"] == "archived"
        assert archived["schema_name"].startswith("archived_")
        assert (await own.get("/todos")).status_code == 401
        assert (await http.post(f"{base}/restore", headers=ADMIN)).json()["status"] == "active"
        assert (await own.get("/todos")).status_code == 200


async def test_key_routes_issue_list_and_revoke(api: str, tenant: CreatedTenant) -> None:
    keys = f"/admin/tenants/{tenant.slug}/keys"
    async with client(api) as http:
        created = await http.post(keys, headers=ADMIN)
        assert created.status_code == 201
        new = created.json()
        async with client(api, tenant.slug, new["api_key"]) as own:
            assert (await own.get("/todos")).status_code == 200
        listed = (await http.get(keys, headers=ADMIN)).json()
        assert [(k["key_id"], k["active"]) for k in listed] == [
            (tenant.key_id, True),
            (new["key_id"], True),
        ]
        assert all("api_key" not in k and "key_hash" not in k for k in listed)
        revoked = await http.delete(f"{keys}/{tenant.key_id}", headers=ADMIN)
        assert revoked.status_code == 204
        again = await http.delete(f"{keys}/{tenant.key_id}", headers=ADMIN)
        assert again.status_code == 404


async def test_a_key_of_another_tenant_cannot_be_revoked_through_this_one(
    api: str, tenant: CreatedTenant, other_tenant: CreatedTenant
) -> None:
    async with client(api) as http:
        path = f"/admin/tenants/{tenant.slug}/keys/{other_tenant.key_id}"
        assert (await http.delete(path, headers=ADMIN)).status_code == 404
    async with client(api, other_tenant.slug, other_tenant.api_key) as own:
        assert (await own.get("/todos")).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "kind"),
    [
        ("GET", "/admin/tenants/ghost-tenant", 404, "not-found"),
        ("POST", "/admin/tenants/ghost-tenant/suspend", 404, "not-found"),
        ("DELETE", "/admin/tenants/ghost-tenant", 404, "not-found"),
        ("POST", "/admin/tenants/{slug}/restore", 409, "conflict"),
        ("GET", "/admin/tenants/Not_A_Slug/keys", 404, "not-found"),
        ("POST", "/admin/tenants/ghost-tenant/keys", 404, "not-found"),
    ],
)
async def test_lifecycle_errors_are_problem_json(
    api: str, tenant: CreatedTenant, method: str, path: str, status: int, kind: str
) -> None:
    async with client(api) as http:
        response = await http.request(method, path.format(slug=tenant.slug), headers=ADMIN)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"https://tenantry.dev/problems/{kind}"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/tenants"),
        ("GET", "/admin/tenants/{slug}"),
        ("POST", "/admin/tenants/{slug}/suspend"),
        ("DELETE", "/admin/tenants/{slug}"),
        ("POST", "/admin/tenants/{slug}/keys"),
        ("DELETE", "/admin/tenants/{slug}/keys/{key_id}"),
    ],
)
async def test_every_lifecycle_route_needs_the_admin_token(
    api: str, tenant: CreatedTenant, method: str, path: str
) -> None:
    async with client(api) as http, client(api, tenant.slug, tenant.api_key) as own:
        url = path.format(slug=tenant.slug, key_id=tenant.key_id)
        for headers in ({}, {"Authorization": f"Bearer {tenant.api_key}"}):
            response = await http.request(method, url, headers=headers)
            assert response.status_code == 401, (url, headers)
        assert (await own.get("/todos")).status_code == 200
