"""Benchmark 2: the same load against databases of 10, 1,000 and 10,000 tenants.

One Tenantry server per database, all started at once; requests spread uniformly at random over
the tenants and alternate between the two routes. Each round is one run that alternates between
the servers in slices of a quarter second (rotated order; see `load.py`), so what else runs on
this shared machine weighs on all sizes alike. The p99 ratio to the smallest size is taken
within a round and the median over rounds reported. The registry query count is sampled after
the warm-up and after every round (benchmark 4).
"""

from typing import Any

from bench.request_path.databases import BenchDatabases
from bench.request_path.measure import (
    ROUTES,
    LoadShape,
    measure,
    median,
    registry_queries,
    rotated,
    run_row,
    tenant_targets,
    warm_up,
)
from bench.request_path.servers import ServerSpec, running_servers

TENANTRY = "bench.request_path.apps:tenantry"


async def run_tenant_count(databases: BenchDatabases, sizes: list[int], shape: LoadShape) -> dict:
    dbs = {size: await databases.with_tenants(size) for size in sizes}
    specs = {
        str(size): ServerSpec(TENANTRY, {"TENANTRY_DATABASE_URL": dbs[size].url}) for size in sizes
    }
    targets = {size: tenant_targets(dbs[size].tenants) for size in sizes}
    runs: list[dict[str, Any]] = []
    registry: dict[int, list[dict[str, int]]] = {size: [] for size in sizes}
    served = dict.fromkeys(sizes, 0)
    with running_servers(specs) as servers:
        for size in sizes:
            warm = await warm_up(servers[str(size)], targets[size], shape)
            served[size] = warm["issued"]
            registry[size].append(
                {"requests": served[size], "queries": registry_queries(servers[str(size)])}
            )
        for round_ in range(shape.rounds):
            order = rotated(sizes, round_)
            measured = await measure(
                [servers[str(n)] for n in order], [targets[n] for n in order], ROUTES, shape
            )
            for size, target in zip(order, measured, strict=True):
                runs.append(run_row(target, round=round_, tenants=size))
                served[size] += target["issued"]
                registry[size].append(
                    {"requests": served[size], "queries": registry_queries(servers[str(size)])}
                )
    return {
        "sizes": sizes,
        "shape": shape.__dict__,
        "setup_seconds": {size: dbs[size].setup_seconds for size in sizes},
        "runs": runs,
        "summary": summarize(runs, sizes),
        "registry": registry,
    }


def _p99_ratios(runs: dict[tuple[int, int], dict], size: int, smallest: int) -> list[float]:
    """p99(size) / p99(smallest) within each round."""
    return [
        run["p99_ms"] / runs[(round_, smallest)]["p99_ms"]
        for (round_, tenants), run in runs.items()
        if tenants == size
    ]


def summarize(runs: list[dict[str, Any]], sizes: list[int]) -> dict[int, dict[str, float]]:
    by_key = {(r["round"], r["tenants"]): r for r in runs}
    summary = {}
    for size in sizes:
        mine = [r for r in runs if r["tenants"] == size]
        ratios = [r["p99_ms"] / by_key[(r["round"], sizes[0])]["p99_ms"] for r in mine]
        summary[size] = {
            "throughput": median([r["throughput"] for r in mine]),
            "p50_ms": median([r["p50_ms"] for r in mine]),
            "p99_ms": median([r["p99_ms"] for r in mine]),
            "p99_ratio": median(ratios),
            "p99_ratio_max": max(ratios),
            "server_cpu_us": median([r["server_cpu_us"] for r in mine]),
            "errors": sum(r["errors"] for r in mine),
        }
    return summary
