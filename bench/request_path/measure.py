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
    """How often every variant is measured, in rotated order."""
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
        port=server.port,
        tenants=targets,
        routes=ROUTES,
        todos=shape.todos,
        duration=600,
        connections=shape.connections,
        max_requests=len(targets),
        sweep=True,
    )
    return await asyncio.to_thread(run_load, spec)


async def measure(
    server: Server, targets: list[dict[str, Any]], routes: dict[str, str], shape: LoadShape
) -> dict[str, Any]:
    """One run: the generator's numbers plus the server process's CPU time per request."""
    spec = LoadSpec(
        port=server.port,
        tenants=targets,
        routes=routes,
        todos=shape.todos,
        duration=shape.duration,
        warmup=shape.warmup,
        connections=shape.connections,
    )
    cpu_before = server.cpu_seconds()
    result = await asyncio.to_thread(run_load, spec)
    cpu = server.cpu_seconds() - cpu_before
    result["server_cpu_us"] = cpu / max(result["issued"], 1) * 1e6
    return result


def registry_queries(server: Server) -> int:
    return server.get_json(STATS_PATH)["registry_queries"]


def rotated(items: list[Any], shift: int) -> list[Any]:
    """The round's order: each variant goes first in turn, so drift favours none."""
    shift %= len(items)
    return items[shift:] + items[:shift]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_row(result: dict[str, Any], part: dict[str, float], **labels: Any) -> dict[str, Any]:
    """One measured run as a flat row of the results file."""
    return {
        **labels,
        "throughput": part["throughput"],
        "p50_ms": part["p50_ms"],
        "p99_ms": part["p99_ms"],
        "requests": part["requests"],
        "errors": part["errors"],
        "server_cpu_us": result["server_cpu_us"],
        "loadgen_cpu_share": result["loadgen_cpu_seconds"] / result["wall_seconds"],
    }
