"""Instructions per request, counted by valgrind: Tenantry, its layers and the baseline.

    python -m bench.independent.instructions [--requests 500] [--write]

Time measures of app CPU move by 5 to 50 % between blocks on this shared 2-core machine (see
`layer_cost`'s spread column); what the CPU executes does not. Each variant runs in a process of
its own under `valgrind --tool=callgrind`, with instrumentation off while Python starts, the app
starts and warms up (300 requests: every statement prepared, every path taken), then on for
`--requests` requests, which are driven in process through ASGI as in `layer_cost` (no server,
no sockets: the request path from the outermost middleware to the response, both routes in
turn, random tenants among 100). The count is user-space instructions of the whole process
(Python, its C extensions, asyncpg's protocol; not the kernel's work on sockets) divided by the
requests (hash seed fixed, the garbage collector off while counting: it runs at allocation
counts, not per request). The child runs on uvloop, the event loop `tenantry serve` and the
baseline's uvicorn run on: asyncio's own loop is Python, and how many of its iterations a request
takes depends on when replies arrive, which moved counts by 1 to 3 % between variants that run
the same code. On uvloop the same variant counts within 0.05 % three times in one run; between
runs a variant moves by about 1 % (the baseline 2,856,000 to 2,888,000 on 2026-11-30), so only
differences within one run, and over about 1 %, are read. The access log writes its lines 100
at a time, as it does at 1,000 requests/s (`held_as_served`).

Variants: the baseline (`bench/independent/app.py`), Tenantry as shipped, as shipped with the
access log off (`TENANTRY_LOG_LEVEL=WARNING`), and Tenantry without each layer of
`bench.independent.layers` (one at a time; `db_tag` is left out: its variant swaps the session
dependency through FastAPI's dependency_overrides, which costs more than the tag), and without
all six middleware at once. A layer's cost is the shipped count minus the variant's; the
instructions are not microseconds (cache misses and branch mispredictions are not counted), but
in these apps they go together (the ratios in `bench.independent` follow them).

Needs valgrind (with its header `valgrind/callgrind.h`) and a C compiler: the switch that starts
and stops the count from Python is a three-line C library, compiled here on first use.
"""

import asyncio
import ctypes
import gc
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import uvloop

from bench.readme import write_section
from service.paths import PROJECT_ROOT

RESULTS = Path(__file__).resolve().parents[1] / "results"
MIDDLEWARE = ("observer", "header_guard", "body_limit", "rate_limit", "vanished", "replay")
VARIANTS = (
    "baseline",
    "shipped",
    "access log off",
    *(f"without {layer}" for layer in (*MIDDLEWARE, "metrics", "flat_routes")),
    "without all six middleware",
)
WARM_UP = 300
SWITCH_SOURCE = """
#include <valgrind/callgrind.h>
void count_on(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void count_off(const char *name) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT(name); }
"""
_TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)


def build_switch(directory: Path) -> Path:
    """The C library whose two functions start and stop callgrind's count (client requests)."""
    source, library = directory / "switch.c", directory / "libswitch.so"
    source.write_text(SWITCH_SOURCE)
    subprocess.run(
        ["cc", "-O2", "-shared", "-fPIC", "-o", str(library), str(source)],
        check=True,
        capture_output=True,
    )
    return library


async def _child(variant: str, config: dict[str, Any], requests: int, switch: str) -> None:
    """Runs inside valgrind: start the variant, warm it, count `requests` requests."""
    from bench.independent.app import create_app as create_baseline
    from bench.independent.layer_cost import access_log_to, cpu_per_request, started
    from bench.independent.layers import without
    from bench.request_path.databases import BenchTenant
    from service.app import create_app
    from tenancy.settings import TenancySettings

    library = ctypes.CDLL(switch)
    tenants = [BenchTenant(slug, key) for slug, key in config["tenants"]]
    log_level = {"log_level": "WARNING"} if variant == "access log off" else {}
    settings = TenancySettings(database_url=config["tenant_url"], **log_level)
    with tempfile.TemporaryFile("w") as log, access_log_to(log, settings):
        if variant == "baseline":
            app = create_baseline(config["baseline_url"])
        elif variant == "without all six middleware":
            app = without(create_app(settings), set(MIDDLEWARE))
        elif variant.startswith("without "):
            app = without(create_app(settings), {variant.removeprefix("without ")})
        else:
            app = create_app(settings)
        held_as_served(app)
        async with started(app) as driver:
            rng = random.Random(5)
            await cpu_per_request(driver, tenants, WARM_UP, rng, config["todos"])
            await asyncio.sleep(0.3)  # the access log's timer has written what it held
            gc.collect()
            gc.disable()
            library.count_on()
            await cpu_per_request(driver, tenants, requests, rng, config["todos"])
            library.count_off(variant.encode())


SERVED_BATCH = 100
"""Access lines a server holds per write at 1,000 requests/s with the default 0.1 s flush."""


def held_as_served(app: Any) -> None:
    """The access log writes SERVED_BATCH lines at a time, as under a served load. Its flush is a
    timer: under valgrind, some 50 times slower, the timer would write every 3 or so lines, and
    the count would charge each request a share of a write (a timer, a syscall) that a server
    spreads over 100."""
    from tenancy.middleware.observer import RequestObserver
    from tenancy.observability.access_log import AccessLog

    for middleware in app.user_middleware:
        if middleware.cls is RequestObserver:
            for sink in middleware.kwargs["sinks"]:
                if isinstance(sink, AccessLog):
                    sink.flush_seconds, sink.max_pending = 3600.0, SERVED_BATCH


def count(variant: str, config_file: Path, requests: int, switch: Path, out: Path) -> float:
    """Instructions per request of one variant (a valgrind process of its own)."""
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    command += [f"--callgrind-out-file={out}/cg.%p", sys.executable, "-m", __spec__.name]
    command += ["--child", variant, "--config", str(config_file), "--requests", str(requests)]
    command += ["--switch", str(switch)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    run = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"{variant}: {run.stderr[-2000:]}")
    for dump in out.glob("cg.*"):
        text = dump.read_text(errors="replace")
        if f"Trigger: Client Request: {variant}\n" in text:
            dump.unlink()
            match = _TOTALS.search(text)
            if match:
                return int(match.group(1)) / requests
    raise RuntimeError(f"{variant}: no count in callgrind's output")


async def _databases(todos: int, tenants: int) -> tuple[Any, dict[str, Any]]:
    from bench.independent.compare import baseline_database
    from bench.request_path.databases import BenchDatabases
    from tenancy.database import bootstrap_url
    from tenancy.settings import TenancySettings

    databases = BenchDatabases(await bootstrap_url(TenancySettings()), todos)
    tenant_db = await databases.with_tenants(tenants)
    config = {
        "tenant_url": tenant_db.url,
        "baseline_url": await baseline_database(databases),
        "tenants": [[t.slug, t.api_key] for t in tenant_db.tenants],
        "todos": todos,
    }
    return databases, config


def run_counts(requests: int, tenants: int, todos: int, variants: tuple[str, ...]) -> dict:
    databases, config = asyncio.run(_databases(todos, tenants))
    try:
        with tempfile.TemporaryDirectory(prefix="tenantry-instructions-") as scratch:
            directory = Path(scratch)
            config_file = directory / "config.json"
            config_file.write_text(json.dumps(config))
            switch = build_switch(directory)
            counts = {v: count(v, config_file, requests, switch, directory) for v in variants}
    finally:
        asyncio.run(databases.drop_all())
    return {"requests": requests, "tenants": tenants, "instructions_per_request": counts}


def markdown(results: dict[str, Any]) -> str:
    counts = results["instructions_per_request"]
    shipped, baseline = counts.get("shipped"), counts.get("baseline")
    lines = [
        "| app | instructions per request | x baseline | the layer costs (shipped minus this) |",
        "|---|---:|---:|---:|",
    ]
    for name, value in counts.items():
        ratio = f"{value / baseline:.3f}" if baseline else ""
        cost = f"{shipped - value:,.0f}" if shipped and name not in ("shipped", "baseline") else ""
        lines.append(f"| {name} | {value:,.0f} | {ratio} | {cost} |")
    return "\n".join(lines)


def main(
    requests: Annotated[int, typer.Option(help="Requests counted per variant")] = 500,
    tenants: Annotated[int, typer.Option(help="Tenants requests pick from")] = 100,
    todos: Annotated[int, typer.Option(help="Todos per tenant (and in the baseline)")] = 30,
    only: Annotated[str, typer.Option(help="Comma-separated variants (default: all)")] = "",
    write: Annotated[bool, typer.Option(help="Rewrite bench/README.md's section")] = False,
    out: Annotated[Path, typer.Option(help="Results (JSON)")] = RESULTS,
    child: Annotated[str, typer.Option(hidden=True)] = "",
    config: Annotated[Path | None, typer.Option(hidden=True)] = None,
    switch: Annotated[str, typer.Option(hidden=True)] = "",
) -> None:
    if child:
        assert config is not None
        uvloop.run(_child(child, json.loads(config.read_text()), requests, switch))
        return
    variants = tuple(v for v in only.split(",") if v) or VARIANTS
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise typer.BadParameter(f"unknown variant(s): {sorted(unknown)}; known: {VARIANTS}")
    results = run_counts(requests, tenants, todos, variants)
    out.mkdir(parents=True, exist_ok=True)
    (out / "instructions.json").write_text(json.dumps(results, indent=1))
    intro = (
        f"Counted {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {tenants} tenants, {requests} requests"
        " per variant after 300 to warm up, both routes in turn."
    )
    table = intro + "\n\n" + markdown(results)
    typer.echo(table)
    if write:
        write_section("<!-- instructions:start -->", "<!-- instructions:end -->", table)


if __name__ == "__main__":
    typer.run(main)
