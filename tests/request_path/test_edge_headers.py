"""Headers a proxy and the app could read differently are refused before anything reads them:
a repeated identity header (400 `duplicate-header`) and too many header lines (431
`too-many-headers`); the Bearer scheme is matched case-insensitively on every route."""

import pytest

from service.app import create_app
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.settings import TenancySettings
from tests.support.common import raw_request
from tests.support.project import ADMIN_TOKEN

PROBLEM = "application/problem+json"


def identity(tenant: CreatedTenant) -> list[tuple[bytes, bytes]]:
    return [
        (b"X-Tenant-ID", tenant.slug.encode()),
        (b"Authorization", f"Bearer {tenant.api_key}".encode()),
    ]


@pytest.mark.parametrize(
    "extra",
    [
        [(b"X-Tenant-ID", b"public")],  # issue 13 #7: first a decoy, then the real slug
        [(b"x-tenant-id", b"other")],
        [(b"Authorization", b"Bearer tnt_000000000000_decoy")],
        [(b"AUTHORIZATION", b"Basic Zm9vOmJhcg==")],
    ],
)
async def test_a_repeated_identity_header_is_400_whatever_the_order(
    api: str, tenant: CreatedTenant, extra: list[tuple[bytes, bytes]]
) -> None:
    for headers in (extra + identity(tenant), identity(tenant) + extra):
        status, response_headers, body = await raw_request(api, "GET", "/todos", headers)
        assert status == 400, body
        assert response_headers["content-type"] == PROBLEM
        assert body.startswith(b'{"type":"https://tenantry.dev/problems/duplicate-header"')


async def test_each_identity_header_once_gets_in(api: str, tenant: CreatedTenant) -> None:
    """Negative control: the same request with no repeat is served."""
    status, _headers, body = await raw_request(api, "GET", "/todos", identity(tenant))
    assert status == 200, body


async def test_a_repeated_authorization_header_is_400_on_admin_routes_too(api: str) -> None:
    admin = (b"Authorization", f"Bearer {ADMIN_TOKEN}".encode())
    status, _h, _b = await raw_request(api, "GET", "/admin/tenants", [admin])
    assert status == 200
    status, headers, body = await raw_request(api, "GET", "/admin/tenants", [admin, admin])
    assert (status, headers["content-type"]) == (400, PROBLEM)
    assert b"/problems/duplicate-header" in body


async def test_more_header_lines_than_the_cap_is_431(api: str, tenant: CreatedTenant) -> None:
    # raw_request adds Host, Content-Type, Content-Length and Connection: 4 lines
    filler = [(f"X-Filler-{n}".encode(), b"x") for n in range(100 - 4 - 2)]
    status, _h, body = await raw_request(api, "GET", "/todos", identity(tenant) + filler)
    assert status == 200, body  # exactly at the cap (100 lines): served
    filler.append((b"X-One-Too-Many", b"x"))
    status, headers, body = await raw_request(api, "GET", "/todos", identity(tenant) + filler)
    assert (status, headers["content-type"]) == (431, PROBLEM)
    assert b"/problems/too-many-headers" in body


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
async def test_the_bearer_scheme_is_case_insensitive(
    api: str, tenant: CreatedTenant, scheme: str
) -> None:
    tenant_headers = [
        (b"X-Tenant-ID", tenant.slug.encode()),
        (b"Authorization", f"{scheme} {tenant.api_key}".encode()),
    ]
    status, _h, body = await raw_request(api, "GET", "/todos", tenant_headers)
    assert status == 200, body
    admin = [(b"Authorization", f"{scheme} {ADMIN_TOKEN}".encode())]
    status, _h, body = await raw_request(api, "GET", "/admin/tenants", admin)
    assert status == 200, body


@pytest.mark.parametrize("scheme", ["Basic", "Bearer:", "Bearerx", "Token"])
async def test_other_schemes_stay_401(api: str, tenant: CreatedTenant, scheme: str) -> None:
    """Negative control: only the scheme's case is relaxed."""
    tenant_headers = [
        (b"X-Tenant-ID", tenant.slug.encode()),
        (b"Authorization", f"{scheme} {tenant.api_key}".encode()),
    ]
    status, _h, _b = await raw_request(api, "GET", "/todos", tenant_headers)
    assert status == 401
    admin = [(b"Authorization", f"{scheme} {ADMIN_TOKEN}".encode())]
    status, _h, _b = await raw_request(api, "GET", "/admin/tenants", admin)
    assert status == 401


def test_openapi_documents_the_header_problems(settings: TenancySettings) -> None:
    spec = create_app(settings).openapi()
    todos = spec["paths"]["/todos"]["get"]["responses"]
    assert "duplicate-header" in todos["400"]["description"]
    assert "too-many-headers" in todos["431"]["description"]
    admin = spec["paths"]["/admin/tenants"]["get"]["responses"]
    assert {"400", "431"} <= set(admin)
