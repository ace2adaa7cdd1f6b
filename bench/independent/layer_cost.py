"""What each layer of Tenantry's request path costs in app CPU, measured in one process.

    python -m bench.independent.layer_cost [--requests 3000] [--blocks 6] [--write]

The shipped app (`service.app.create_app`) and variants of it with one layer taken out
(`bench.independent.layers`) are started in this process (their lifespans, real PostgreSQL) and
driven directly through ASGI: a request scope as uvicorn builds it, the request message, the
response collected. No server, no sockets, no load generator: the measure is this process's CPU
time (`time.process_time`, user + system) per request, which waits on PostgreSQL do not count
and other work on the machine barely moves. Variants run in turn in blocks (rotated order) and
the median per-request CPU over blocks is reported; a layer's cost is the shipped app's CPU minus
the variant's. Both routes in turn, random tenants among `--tenants`. Two more shipped apps,
in the same blocks, count the access log's own CPU in situ (its sink and its flushes): each line
written as its request ends (`TENANTRY_ACCESS_LOG_FLUSH_SECONDS=0`) and batched (the default).
The access log goes to a temporary file, as `tenantry serve`'s stderr to a file would.
"""

import asyncio
import json
import logging
import os
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.independent.app import create_app as create_baseline
from bench.independent.compare import BASELINE, baseline_database
from bench.independent.layers import LAYERS, without
from bench.readme import write_section
from bench.request_path.databases import BenchDatabases, BenchTenant
from service.app import create_app
from tenancy.database import bootstrap_url
from tenancy.middleware.observer import RequestObserver, RequestRecord
from tenancy.observability.access_log import AccessLog
from tenancy.observability.log_format import configure_logging
from tenancy.settings import TenancySettings
from tenancy.state_keys import RUNTIME_KEY, TENANT_KEY

SHIPPED = "tenantry as shipped"
RESULTS = Path(__file__).resolve().parents[1] / "results"
PATHS = ("/todos/{id}", "/todos?limit=20")


class Driver:
    """One app, started, answering requests handed to it as uvicorn would hand them."""

    def __init__(self, app: FastAPI, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state

    def scope(self, path: str, tenant: BenchTenant) -> Scope:
        raw_path, _, query = path.partition("?")
        headers = [
            (b"host", b"127.0.0.1"),
            (b"x-tenant-id", tenant.slug.encode()),
            (b"authorization", f"Bearer {tenant.api_key}".encode()),
        ]
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000),
            "scheme": "http",
            "root_path": "",
            "headers": headers,
            "state": self.state.copy(),
            "method": "GET",
            "path": raw_path,
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
        }

    async def get(self, path: str, tenant: BenchTenant) -> int:
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(self.scope(path, tenant), receive, send)
        return status


@contextmanager
def access_log_to(stream: TextIO, settings: TenancySettings) -> Iterator[None]:
    """Logging as `tenantry serve` sets it up (the access log on), undone on exit."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(settings, stream)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


class TimedAccessLog(AccessLog):
    """The shipped access log with its own CPU counted: the sink and every flush, once each
    (a flush the sink itself calls is inside the sink's count)."""

    def __init__(self, flush_seconds: float) -> None:
        super().__init__(flush_seconds)
        self.cpu_ns = 0
        self.lines = 0
        self._inside = False

    def __call__(self, record: RequestRecord) -> None:
        started_ns = time.process_time_ns()
        self._inside = True
        try:
            super().__call__(record)
        finally:
            self._inside = False
            self.cpu_ns += time.process_time_ns() - started_ns
            self.lines += 1

    def flush(self) -> None:
        if self._inside:
            super().flush()
            return
        started_ns = time.process_time_ns()
        super().flush()
        self.cpu_ns += time.process_time_ns() - started_ns


ACCESS_LOG_MODES = {"each line as its request ends (0 s)": 0.0, "batched (0.1 s, shipped)": 0.1}
"""TENANTRY_ACCESS_LOG_FLUSH_SECONDS values whose access-log CPU is measured in situ."""


def with_access_log(app: FastAPI, access_log: AccessLog) -> FastAPI:
    """app with `access_log` as RequestObserver's access-log sink (its first)."""
    for middleware in app.user_middleware:
        if middleware.cls is RequestObserver:
            middleware.kwargs["sinks"] = [access_log, *middleware.kwargs["sinks"][1:]]
    return app


@asynccontextmanager
async def started(app: FastAPI) -> AsyncIterator[Driver]:
    async with app.router.lifespan_context(app) as state:
        yield Driver(app, dict(state or {}))


async def cpu_per_request(
    driver: Driver, tenants: list[BenchTenant], requests: int, rng: random.Random, todos: int
) -> float:
    """µs of this process's CPU per request, over `requests` requests (both routes in turn)."""
    started_cpu = time.process_time()
    for n in range(requests):
        path = PATHS[n % 2].replace("{id}", str(rng.randrange(todos) + 1))
        status = await driver.get(path, rng.choice(tenants))
        if status != 200:
            raise RuntimeError(f"{path}: {status}")
    return (time.process_time() - started_cpu) / requests * 1e6


async def run_layer_cost(
    server_url: str, tenants: int, requests: int, blocks: int, log: TextIO, todos: int = 30
) -> dict[str, Any]:
    """`log` receives the access log (one JSON line per request, as from `tenantry serve`)."""
    databases = BenchDatabases(server_url, todos)
    try:
        tenant_db = await databases.with_tenants(tenants)
        baseline_url = await baseline_database(databases)
        settings = TenancySettings(database_url=tenant_db.url)
        variants = {SHIPPED: set()} | {f"without {name}": {name} for name in LAYERS}
        rng = random.Random(7)
        async with AsyncExitStack() as stack:
            stack.enter_context(access_log_to(log, settings))
            drivers = {
                name: await stack.enter_async_context(
                    started(without(create_app(settings), layers))
                )
                for name, layers in variants.items()
            }
            timed = {mode: TimedAccessLog(seconds) for mode, seconds in ACCESS_LOG_MODES.items()}
            for mode, access_log in timed.items():
                drivers[f"access log {mode}"] = await stack.enter_async_context(
                    started(with_access_log(create_app(settings), access_log))
                )
            drivers[BASELINE] = await stack.enter_async_context(
                started(create_baseline(baseline_url))
            )
            for driver in drivers.values():  # warm: every statement prepared, every path taken
                await cpu_per_request(driver, tenant_db.tenants, 200, rng, todos)
            for access_log in timed.values():
                access_log.flush()
                access_log.cpu_ns = access_log.lines = 0
            isolated = await isolated_costs(drivers[SHIPPED], tenant_db.tenants[0], requests)
            names = list(drivers)
            samples: dict[str, list[float]] = {name: [] for name in names}
            for block in range(blocks):
                shift = block % len(names)
                for name in names[shift:] + names[:shift]:
                    samples[name].append(
                        await cpu_per_request(
                            drivers[name], tenant_db.tenants, requests, rng, todos
                        )
                    )
            for access_log in timed.values():
                access_log.flush()
        return {
            "tenants": tenants,
            "requests": requests,
            "blocks": blocks,
            "layers": list(LAYERS),
            "cpu_us": {name: statistics.median(values) for name, values in samples.items()},
            "spread_us": {name: max(v) - min(v) for name, v in samples.items()},
            "isolated_us": isolated,
            "access_log_us": {
                mode: log.cpu_ns / 1000 / max(log.lines, 1) for mode, log in timed.items()
            },
        }
    finally:
        await databases.drop_all()


async def _answer(_scope: Scope, _receive: Receive, send: Send) -> None:
    """The innermost app of the isolated runs: a 200 with a small body, nothing else."""
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": b"{}"})


_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"2")]


async def isolated_costs(driver: Driver, tenant: BenchTenant, calls: int) -> dict[str, float]:
    """µs of CPU per request of each middleware alone around `_answer` (minus `_answer` alone),
    and of the whole chain, in the shipped order; the tenant as TenantMiddleware admits it."""
    admitted = await driver.state[RUNTIME_KEY].directory.get(tenant.slug)
    chains: dict[str, ASGIApp] = {"(the app alone)": _answer}
    stack: ASGIApp = _answer
    for middleware in reversed(driver.app.user_middleware):
        cls, args, kwargs = middleware.cls, middleware.args, middleware.kwargs
        chains[cls.__name__] = cls(_answer, *args, **kwargs)  # type: ignore[call-arg]
        stack = cls(stack, *args, **kwargs)  # type: ignore[call-arg]
    chains["all of them, stacked"] = stack
    costs: dict[str, float] = {}
    for name, app in chains.items():
        needs_tenant = name not in ("TenantMiddleware", "all of them, stacked")
        costs[name] = await _cpu_of(driver, app, tenant, admitted if needs_tenant else None, calls)
    alone = costs.pop("(the app alone)")
    return {name: cost - alone for name, cost in costs.items()}


async def _cpu_of(
    driver: Driver, app: ASGIApp, tenant: BenchTenant, admitted: object, calls: int
) -> float:
    best = float("inf")
    for _ in range(5):  # the least disturbed of five runs
        started_cpu = time.process_time()
        for _ in range(calls):
            scope = driver.scope("/todos/1", tenant)
            if admitted is not None:
                scope["state"][TENANT_KEY] = admitted
            await app(scope, _receive, _discard)
        best = min(best, (time.process_time() - started_cpu) / calls * 1e6)
    return best


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(_message: Message) -> None:
    return None


def markdown(results: dict[str, Any]) -> str:
    shipped = results["cpu_us"][SHIPPED]
    lines = [
        "| app | CPU µs/request (in process) | the layer costs µs | spread over blocks µs |",
        "|---|---:|---:|---:|",
    ]
    for name, cpu in results["cpu_us"].items():
        is_layer = name.startswith("without ")
        cost = f"{shipped - cpu:.1f}" if is_layer else ""  # other rows: no layer taken out
        lines.append(f"| {name} | {cpu:.0f} | {cost} | {results['spread_us'][name]:.0f} |")
    lines += [
        "",
        "| middleware, alone around an app that only answers | CPU µs/request |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {cost:.1f} |" for name, cost in results["isolated_us"].items()]
    lines += [
        "",
        "| the access log, in the shipped app (its own CPU, sink and flushes) | CPU µs/request |",
        "|---|---:|",
    ]
    lines += [f"| {mode} | {cost:.1f} |" for mode, cost in results["access_log_us"].items()]
    return "\n".join(lines)


def main(
    tenants: Annotated[int, typer.Option(help="Tenants requests pick from")] = 100,
    requests: Annotated[int, typer.Option(help="Requests per variant and block")] = 2000,
    blocks: Annotated[int, typer.Option(help="Blocks per variant (rotated order)")] = 5,
    todos: Annotated[int, typer.Option(help="Todos per tenant (and in the baseline)")] = 30,
    write: Annotated[bool, typer.Option(help="Rewrite bench/README.md's section")] = False,
    out: Annotated[Path, typer.Option(help="Results (JSON)")] = RESULTS,
) -> None:
    load = os.getloadavg()[0]
    server_url = asyncio.run(bootstrap_url(TenancySettings()))
    with tempfile.TemporaryFile("w") as log:
        results = asyncio.run(run_layer_cost(server_url, tenants, requests, blocks, log, todos))
    out.mkdir(parents=True, exist_ok=True)
    (out / "layer_cost.json").write_text(json.dumps(results, indent=1, default=str))
    intro = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average (1 min) {load:.1f} "
        f"before and {os.getloadavg()[0]:.1f} after; {tenants} tenants, {blocks} blocks of "
        f"{requests} requests per variant."
    )
    table = intro + "\n\n" + markdown(results)
    typer.echo(table)
    if write:
        write_section("<!-- layer_cost:start -->", "<!-- layer_cost:end -->", table)


if __name__ == "__main__":
    typer.run(main)
