"""What every HTTP benchmark shares: the routes, the load's shape, warming up and measuring."""

import asyncio
import statistics
from dataclasses import dataclass
from typing import Any

from bench.request_path.apps import STATS_PATH
from bench.request_path.databases import PLAIN_MARKER, BenchTenant
from bench.request_path.load import LoadSpec, run_load
from bench.request_path.servers import Server

ROUTES = {"get_todo": "/todos/{id}", "list_todos": "/todos?limit=20"}
"""The two routes of the issue; "{id}" is a random seeded todo id."""


@dataclass(frozen=True)
class LoadShape:
    duration: float
    """Measured seconds per run."""
    warmup: float
    """Seconds of load before each run's measurement starts."""
    connections: int
    """Concurrent keep-alive connections (one request in flight on each)."""
    rounds: int
    """How many runs, each alternating between all variants in rotated order."""
    todos: int
    """Todos seeded per tenant; request ids are drawn from 1..todos."""


def tenant_targets(tenants: list[BenchTenant]) -> list[dict[str, Any]]:
    return [
        {
            "headers": {"X-Tenant-ID": t.slug, "Authorization": f"Bearer {t.api_key}"},
            "marker": t.slug,
        }
        for t in tenants
    ]


PLAIN_TARGETS = [{"headers": {}, "marker": PLAIN_MARKER}]


async def warm_up(server: Server, targets: list[dict[str, Any]], shape: LoadShape) -> dict:
    """One request per tenant, in order: afterwards the tenant directory holds every tenant."""
    spec = LoadSpec(
        targets=[{"port": server.port, "tenants": targets}],
        routes=ROUTES,
        todos=shape.todos,
        duration=600,
        connections=shape.connections,
        max_requests=len(targets),
        sweep=True,
    )
    return (await asyncio.to_thread(run_load, spec))["targets"][0]


async def measure(
    servers: list[Server],
    targets: list[list[dict[str, Any]]],
    routes: dict[str, str],
    shape: LoadShape,
) -> list[dict[str, Any]]:
    """One run alternating between the servers (each gets `shape.duration` measured seconds):
    per server the generator's numbers plus the server process's CPU time per request."""
    spec = LoadSpec(
        targets=[{"port": s.port, "tenants": t} for s, t in zip(servers, targets, strict=True)],
        routes=routes,
        todos=shape.todos,
        duration=shape.duration * len(servers),
        warmup=shape.warmup,
        connections=shape.connections,
        slice_seconds=min(0.25, shape.duration / 4),  # every server gets 4 slices at least
    )
    cpu_before = [server.cpu_seconds() for server in servers]
    result = await asyncio.to_thread(run_load, spec)
    for server, before, target in zip(servers, cpu_before, result["targets"], strict=True):
        target["server_cpu_us"] = (server.cpu_seconds() - before) / max(target["issued"], 1) * 1e6
        target["loadgen_cpu_share"] = result["loadgen_cpu_seconds"] / result["wall_seconds"]
    return result["targets"]


def registry_queries(server: Server) -> int:
    return server.get_json(STATS_PATH)["registry_queries"]


def rotated(items: list[Any], shift: int) -> list[Any]:
    """The round's order: each variant goes first in turn, so drift favours none."""
    shift %= len(items)
    return items[shift:] + items[:shift]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_row(target: dict[str, Any], **labels: Any) -> dict[str, Any]:
    """One server's share of a measured run, as a flat row of the results file."""
    total = target["total"]
    return {
        **labels,
        "throughput": total["throughput"],
        "p50_ms": total["p50_ms"],
        "p99_ms": total["p99_ms"],
        "requests": total["requests"],
        "errors": total["errors"],
        "server_cpu_us": target["server_cpu_us"],
        "loadgen_cpu_share": target["loadgen_cpu_share"],
    }


def ratio_summary(
    runs: list[dict[str, Any]], variants: list[str], baseline: str
) -> dict[str, dict[str, dict[str, float]]]:
    """Per route and variant: medians over rounds of run_row's figures, and the throughput
    ratio to `baseline`'s taken within each round (its median, min and max)."""
    by_key = {(r["round"], r["route"], r["variant"]): r for r in runs}
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for route in ROUTES:
        summary[route] = {}
        for variant in variants:
            mine = [r for r in runs if r["route"] == route and r["variant"] == variant]
            ratios = [
                r["throughput"] / by_key[(r["round"], route, baseline)]["throughput"] for r in mine
            ]
            summary[route][variant] = {
                "throughput": median([r["throughput"] for r in mine]),
                "ratio": median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "p50_ms": median([r["p50_ms"] for r in mine]),
                "p99_ms": median([r["p99_ms"] for r in mine]),
                "server_cpu_us": median([r["server_cpu_us"] for r in mine]),
                "errors": sum(r["errors"] for r in mine),
            }
    return summary
