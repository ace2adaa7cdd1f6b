"""Benchmark 1: what tenancy costs a request, against the same service without tenancy.

Four servers run at once (see `apps.py`), idle unless measured. Each round is one run per
route that alternates between the four in slices of a quarter second (rotated order), so each
server has the machine to itself in its slices and its neighbours in time are the others: what
else runs on this shared machine weighs on all alike. Ratios are taken within a round; the
median over rounds is reported.
"""

from typing import Any

from bench.request_path.databases import BenchDatabases
from bench.request_path.measure import (
    PLAIN_TARGETS,
    ROUTES,
    LoadShape,
    measure,
    ratio_summary,
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
                order = rotated(list(VARIANTS), round_)
                measured = await measure(
                    [servers[n] for n in order], [targets[n] for n in order], {route: path}, shape
                )
                for name, target in zip(order, measured, strict=True):
                    runs.append(run_row(target, round=round_, route=route, variant=name))
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
    """Per route and variant: medians over rounds, and the throughput ratio to the baseline."""
    return ratio_summary(runs, list(VARIANTS), BASELINE)
