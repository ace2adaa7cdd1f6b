"""Starlette tries an app's routes in order, at a cost per route tried (bench/README.md): the
tenant routes come first, the documentation's last. (That every documented path still answers
is in tests/api: the OpenAPI checks and the docs pages.)"""

from service import todos
from service.app import DOCUMENTATION_PREFIXES, create_app
from tenancy.settings import TenancySettings


def test_the_tenant_routes_are_tried_first_and_the_documentation_last(
    settings: TenancySettings,
) -> None:
    app = create_app(settings)
    paths = [getattr(route, "path", "") for route in app.router.routes]
    documentation = [i for i, path in enumerate(paths) if path.startswith(DOCUMENTATION_PREFIXES)]
    assert len(documentation) == 5  # /openapi.json, the assets, /docs, its redirect, /redoc
    assert documentation == list(range(len(paths) - 5, len(paths)))
    assert paths[: len(todos.router.routes)] == [route.path for route in todos.router.routes]
    assert {"/", "/healthz", "/metrics", "/admin/tenants"} <= set(paths)  # the rest still there
