"""bench/independent's own parts, unit-tested where they live (tests/ never imports bench): the
baseline app shares no code with Tenantry, each layer variant lacks exactly its layer, profile
samples are charged to the right layer. Runs of the benchmark itself, tiny and in their own
process, are in tests/bench/test_independent_bench.py."""

from bench.independent.app import create_app as create_baseline
from bench.independent.layers import LAYERS, MIDDLEWARE, without
from bench.independent.profile import OTHER, layer_of, read_samples
from service.app import create_app
from tenancy.middleware.observer import RequestObserver
from tenancy.settings import TenancySettings

SETTINGS = TenancySettings(database_url="postgresql+asyncpg://unused@127.0.0.1/unused")
"""The app is built, never started: no database is reached."""


def test_the_baseline_shares_no_code_with_tenantry() -> None:
    routes = {route.path for route in create_baseline().routes}
    assert {"/todos", "/todos/{todo_id}", "/healthz"} <= routes
    with open("bench/independent/app.py") as source:
        imports = [line for line in source if line.startswith(("import ", "from "))]
    assert not [line for line in imports if "service" in line or "tenancy" in line]


def test_each_layer_variant_differs_from_the_shipped_app_by_that_layer() -> None:
    settings = SETTINGS
    shipped = [m.cls for m in create_app(settings).user_middleware]
    for name, cls in MIDDLEWARE.items():
        kept = [m.cls for m in without(create_app(settings), {name}).user_middleware]
        assert kept == [c for c in shipped if c is not cls]
    observer = next(
        m
        for m in without(create_app(settings), {"metrics"}).user_middleware
        if m.cls is RequestObserver
    )
    assert len(observer.kwargs["sinks"]) == 1
    assert set(LAYERS) >= set(MIDDLEWARE)


def test_profile_samples_are_charged_to_the_deepest_known_layer() -> None:
    raw = (
        "run (uvicorn/main.py:1);handle (tenancy/middleware/tenant.py:40);"
        "dumps (json/__init__.py:2) 3\n"
        "run (uvicorn/main.py:1);log_request (tenancy/observability/access_log.py:9);"
        "dumps (json/__init__.py:2) 2\n"
        "<module> (x.py:1) 1\n"
    )
    assert read_samples(raw) == {
        "tenant resolution + key check": 3,
        "access log (logging, JSON formatter, write)": 2,
        OTHER: 1,
    }
    assert layer_of(["fetch (asyncpg/connection.py:1)"]) == "asyncpg"


def test_flat_routes_declare_what_include_router_did() -> None:
    settings = SETTINGS
    """service.app declares the routers' routes on the app; the bench variant that includes the
    routers instead serves the same paths and documents the same API."""
    flat = create_app(settings)
    included = without(create_app(settings), {"flat_routes"})
    assert not any(type(r).__name__ == "_IncludedRouter" for r in flat.router.routes)
    assert any(type(r).__name__ == "_IncludedRouter" for r in included.router.routes)
    assert flat.openapi() == included.openapi()
