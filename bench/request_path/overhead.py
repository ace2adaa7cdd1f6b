"""Benchmark 1: what tenancy costs a request, against the same service without tenancy.

Four servers run at once (see `apps.py`), idle unless measured. Each round measures, on each
route, every variant alone in rotated order (its throughput, p50, p99 and app CPU per request),
then each variant side by side with the baseline: two generators drive the two servers over the
same seconds, so whatever else runs on this shared machine weighs on both alike, and the
throughput ratio of the pair is the ratio of their per-request costs. Ratios are taken within a
round and the median over rounds is reported.
"""

import asyncio
from typing import Any

from bench.request_path.databases import BenchDatabases
from bench.request_path.measure import (
    PLAIN_TARGETS,
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

BASELINE = "no_tenancy"
VARIANTS = {
    "tenantry": "bench.request_path.apps:tenantry",
    "set_config_statement": "bench.request_path.apps:set_config_statement",
    "naive_set": "bench.request_path.apps:naive_set",
    BASELINE: "bench.request_path.apps:no_tenancy",
}
CONTENDERS = [name for name in VARIANTS if name != BASELINE]


async def run_overhead(databases: BenchDatabases, tenants: int, shape: LoadShape) -> dict:
    tenant_db = await databases.with_tenants(tenants)
    plain_url = await databases.plain()
    specs = {
        name: ServerSpec(
            factory, {"TENANTRY_DATABASE_URL": plain_url if name == BASELINE else tenant_db.url}
        )
        for name, factory in VARIANTS.items()
    }
    targets = {
        name: PLAIN_TARGETS if name == BASELINE else tenant_targets(tenant_db.tenants)
        for name in VARIANTS
    }
    runs: list[dict[str, Any]] = []
    with running_servers(specs) as servers:
        for name, server in servers.items():
            await warm_up(server, targets[name], shape)
        tenantry = servers["tenantry"]
        registry_before = registry_queries(tenantry)
        for round_ in range(shape.rounds):
            for route, path in ROUTES.items():
                labels = {"round": round_, "route": route}
                for name in rotated(list(VARIANTS), round_):
                    result = await measure(servers[name], targets[name], {route: path}, shape)
                    runs.append(run_row(result, result["total"], **labels, variant=name))
                for name in rotated(CONTENDERS, round_):
                    pair = (name, BASELINE)
                    results = await asyncio.gather(
                        *(measure(servers[n], targets[n], {route: path}, shape) for n in pair)
                    )
                    for n, result in zip(pair, results, strict=True):
                        runs.append(
                            run_row(result, result["total"], **labels, variant=n, beside=name)
                        )
        registry = {
            "requests": sum(r["requests"] for r in runs if r["variant"] == "tenantry"),
            "queries_during_warm_up": registry_before,
            "queries_during_measurement": registry_queries(tenantry) - registry_before,
        }
    return {
        "tenants": tenants,
        "shape": shape.__dict__,
        "runs": runs,
        "summary": summarize(runs),
        "registry": registry,
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per route and variant: medians over rounds of the runs alone, and the throughput ratio
    to the baseline, both alone (runs of one round) and side by side (runs of one pair)."""
    alone = {(r["round"], r["route"], r["variant"]): r for r in runs if "beside" not in r}
    paired = {(r["round"], r["route"], r["beside"], r["variant"]): r for r in runs if "beside" in r}
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for route in ROUTES:
        summary[route] = {}
        for variant in VARIANTS:
            mine = [r for key, r in alone.items() if key[1:] == (route, variant)]
            ratios = [
                r["throughput"] / alone[(r["round"], route, BASELINE)]["throughput"] for r in mine
            ]
            side_by_side = [
                paired[(key[0], route, variant, variant)]["throughput"] / r["throughput"]
                for key, r in paired.items()
                if key[1:] == (route, variant, BASELINE)
            ]
            summary[route][variant] = {
                "throughput": median([r["throughput"] for r in mine]),
                "ratio": median(ratios),
                "ratio_side_by_side": median(side_by_side) if side_by_side else 1.0,
                "p50_ms": median([r["p50_ms"] for r in mine]),
                "p99_ms": median([r["p99_ms"] for r in mine]),
                "server_cpu_us": median([r["server_cpu_us"] for r in mine]),
                "errors": sum(
                    r["errors"] for r in runs if (r["route"], r["variant"]) == (route, variant)
                ),
            }
    return summary
