"""What a newcomer meets first: `GET /` in a browser, and a tenant header that is not right."""

import httpx
import pytest

from tenancy.lifecycle.onboarding import CreatedTenant
from tests.support.common import raw_request


async def test_the_root_points_a_browser_at_the_docs(api: str) -> None:
    async with httpx.AsyncClient(base_url=api) as http:
        root = await http.get("/")
        docs = await http.get("/", follow_redirects=True)
    assert (root.status_code, root.headers["location"]) == (307, "/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (None, "is missing"),
        (b"", "is empty"),
        (b"Acme", "is not a slug"),
        (b"admin", "names a reserved slug"),
        (b"a" * 65, "is longer than 64 bytes"),
        ("caf\u00e9".encode("latin-1"), "is not ASCII"),
    ],
)
async def test_a_malformed_tenant_header_says_why(
    api: str, tenant: CreatedTenant, header: bytes | None, why: str
) -> None:
    headers = [(b"Authorization", f"Bearer {tenant.api_key}".encode())]
    if header is not None:
        headers.append((b"X-Tenant-ID", header))
    status, response_headers, body = await raw_request(api, "GET", "/todos", headers)
    assert status == 400
    assert response_headers["content-type"] == "application/problem+json"
    assert f"The X-Tenant-ID header {why}:".encode() in body
