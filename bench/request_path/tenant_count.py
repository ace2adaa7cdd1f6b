"""Benchmark 2: the same load against databases of 10, 1,000 and 10,000 tenants.

One Tenantry server per database, all started at once; requests spread uniformly at random over
the tenants and alternate between the two routes. Each round measures every size alone in
rotated order, then all sizes together over the same seconds (so the rest of this shared
machine weighs on each alike). The p99 ratio to the smallest size is taken within a round and
the median over rounds reported. The registry query count is sampled after the warm-up and
after every round (benchmark 4).
"""

import asyncio
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
            for size in rotated(sizes, round_):
                result = await measure(servers[str(size)], targets[size], ROUTES, shape)
                runs.append(run_row(result, result["total"], round=round_, tenants=size))
                served[size] += result["issued"]
            together = await asyncio.gather(
                *(measure(servers[str(size)], targets[size], ROUTES, shape) for size in sizes)
            )
            for size, result in zip(sizes, together, strict=True):
                row = run_row(result, result["total"], round=round_, tenants=size, together=True)
                runs.append(row)
                served[size] += result["issued"]
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
    alone = {(r["round"], r["tenants"]): r for r in runs if not r.get("together")}
    together = {(r["round"], r["tenants"]): r for r in runs if r.get("together")}
    summary = {}
    for size in sizes:
        mine = [r for (_, tenants), r in alone.items() if tenants == size]
        summary[size] = {
            "throughput": median([r["throughput"] for r in mine]),
            "p50_ms": median([r["p50_ms"] for r in mine]),
            "p99_ms": median([r["p99_ms"] for r in mine]),
            "p99_ratio": median(_p99_ratios(alone, size, sizes[0])),
            "p99_ratio_together": median(_p99_ratios(together, size, sizes[0])),
            "server_cpu_us": median([r["server_cpu_us"] for r in mine]),
            "errors": sum(r["errors"] for r in runs if r["tenants"] == size),
        }
    return summary
