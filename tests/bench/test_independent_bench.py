"""bench/independent (issue 17) still runs: the baseline app, the interleaved comparison and the
per-layer variants produce numbers at tiny sizes. Timings are never asserted here."""

import io
import math

from bench.independent.app import create_app as create_baseline
from bench.independent.compare import BASELINE, main_variants, run_comparison
from bench.independent.layer_cost import SHIPPED, run_layer_cost
from bench.independent.layers import LAYERS, MIDDLEWARE, without
from bench.independent.profile import OTHER, layer_of, read_samples
from bench.request_path.measure import LoadShape
from service.app import create_app
from tenancy.observability.requests import RequestObserver
from tenancy.settings import TenancySettings

TINY = LoadShape(duration=0.3, warmup=0.1, connections=2, rounds=1, todos=5)


async def test_tenantry_and_the_baseline_are_measured_in_one_run(server_url: str) -> None:
    results = await run_comparison(server_url, main_variants(None), 2, TINY)
    for route in ("get_todo", "list_todos"):
        variants = results["summary"][route]
        assert set(variants) == {"tenantry", "tenantry, access log off", BASELINE}
        for numbers in variants.values():
            assert numbers["throughput"] > 0 and numbers["errors"] == 0
            assert math.isfinite(numbers["ratio"]) and numbers["server_cpu_us"] > 0
    assert len(results["load_average"]) == 2


def test_the_baseline_shares_no_code_with_tenantry() -> None:
    routes = {route.path for route in create_baseline().routes}
    assert {"/todos", "/todos/{todo_id}", "/healthz"} <= routes
    with open("bench/independent/app.py") as source:
        imports = [line for line in source if line.startswith(("import ", "from "))]
    assert not [line for line in imports if "service" in line or "tenancy" in line]


def test_each_layer_variant_differs_from_the_shipped_app_by_that_layer(
    settings: TenancySettings,
) -> None:
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
        "run (uvicorn/main.py:1);handle (tenancy/middleware.py:40);dumps (json/__init__.py:2) 3\n"
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


async def test_the_layer_costs_are_measured_in_process(server_url: str) -> None:
    results = await run_layer_cost(server_url, 2, 20, 1, io.StringIO(), todos=5)
    assert set(results["cpu_us"]) == {SHIPPED, BASELINE} | {f"without {n}" for n in LAYERS}
    assert all(cpu > 0 for cpu in results["cpu_us"].values())
    assert "all of them, stacked" in results["isolated_us"]


def test_flat_routes_declare_what_include_router_did(settings: TenancySettings) -> None:
    """service.app declares the routers' routes on the app; the bench variant that includes the
    routers instead serves the same paths and documents the same API."""
    flat = create_app(settings)
    included = without(create_app(settings), {"flat_routes"})
    assert not any(type(r).__name__ == "_IncludedRouter" for r in flat.router.routes)
    assert any(type(r).__name__ == "_IncludedRouter" for r in included.router.routes)
    assert flat.openapi() == included.openapi()
