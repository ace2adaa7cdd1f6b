"""A smoke run of every request-path benchmark with tiny sizes: it runs end to end (real
uvicorn, real load generator, real databases) and produces numbers. Timings are never asserted."""

import math

from bench.request_path.report import markdown
from bench.request_path.suite import BenchOptions, run_suite

TINY = BenchOptions(
    overhead_tenants=2,
    sizes=[2, 3],
    rounds=1,
    duration=0.3,
    warmup=0.1,
    connections=2,
    todos=5,
    memory_checkpoints=2,
    memory_pool=2,
    memory_transactions=60,
    max_uses=[0, 10],
    reconnect_transactions=5,
)


def measured(numbers: dict) -> bool:
    return numbers["throughput"] > 0 and math.isfinite(numbers["p99_ms"]) and numbers["errors"] == 0


async def test_every_request_path_benchmark_produces_numbers(server_url: str) -> None:
    results = await run_suite(server_url, TINY)

    overhead = results["overhead"]
    assert set(overhead["summary"]) == {"get_todo", "list_todos"}
    for variants in overhead["summary"].values():
        assert set(variants) == {"tenantry", "set_config_statement", "naive_set", "no_tenancy"}
        assert all(measured(numbers) for numbers in variants.values())
    # the in-memory registry: one load at start-up, whatever the tenant count (it was one query
    # per tenant on first use before the registry was kept in memory)
    assert overhead["registry"]["queries_during_warm_up"] == 1
    assert overhead["registry"]["queries_during_measurement"] == 0

    tenants = results["tenants"]
    assert set(tenants["summary"]) == set(TINY.sizes)
    assert all(measured(numbers) for numbers in tenants["summary"].values())
    for size, samples in tenants["registry"].items():
        assert [sample["queries"] for sample in samples] == [1] * (1 + TINY.rounds), size

    memory = results["memory"]
    assert [p["tenants_touched"] for p in memory["growth"]] == [0, 1, 2, 3]
    assert all(p["contexts_mib"] > 0 for p in memory["growth"])
    assert math.isfinite(memory["contexts_kib_per_tenant"]) and math.isfinite(
        memory["reconnect_ms"]
    )
    assert [p["pool_max_uses"] for p in memory["policies"]] == TINY.max_uses
    assert all(p["transactions_per_second"] > 0 for p in memory["policies"])

    tables = markdown(results)
    for heading in ("Overhead", "Tenant count", "Registry lookups", "Backend memory"):
        assert f"### {heading}" in tables
