"""A 405 names, in `Allow`, every method its path serves (FastAPI makes one route per method, and
Starlette's 405 used to name only the first)."""

from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.testing.servers import client

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


async def test_allow_lists_every_method_of_the_path(api: str, tenant: CreatedTenant) -> None:
    async with client(api, tenant.slug, tenant.api_key) as http:
        spec = (await http.get("/openapi.json")).json()
        tenant_paths = [p for p in spec["paths"] if not p.startswith(("/admin", "/healthz"))]
        assert {"/todos", "/todos/{todo_id}"} <= set(tenant_paths)
        for template in tenant_paths:
            path = template.replace("{todo_id}", "2").replace("{user_id}", "2")
            path = path.replace("{song_id}", "2")
            served = {method.upper() for method in spec["paths"][template]}
            for method in set(METHODS) - served:
                response = await http.request(method, path)
                assert response.status_code == 405, (method, path, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                if method != "HEAD":
                    assert response.json()["type"].endswith("/method-not-allowed")
                allowed = {m.strip() for m in response.headers["allow"].split(",")}
                assert allowed == served, (method, path)


async def test_allow_names_the_methods_of_routes_outside_the_document(api: str) -> None:
    """/, /docs, /redoc and /metrics are not in the OpenAPI document: their 405 still says GET."""
    async with client(api) as http:
        for path in ("/", "/docs", "/redoc", "/metrics"):
            response = await http.post(path)
            assert response.status_code == 405, path
            assert "GET" in {m.strip() for m in response.headers["allow"].split(",")}, path
