"""Where a request's app CPU goes, layer by layer: py-spy samples of the real servers under load.

    python -m bench.independent.profile [--seconds 15] [--write]

Tenantry as shipped (`tenantry serve`) and the independent baseline run at once; each in turn
gets the load alone while py-spy samples its process (`--rate` samples per second of CPU, idle
time excluded). Each sample is charged to the deepest frame that belongs to a known layer (a
JSON dump made by the access log's formatter counts as access log, not as "json"), and a
layer's µs per request is its share of the samples times the process's CPU time per request
measured over the same seconds (`psutil`: user + system). Needs `py-spy` (`uv pip install
py-spy`) and ptrace rights over the servers.
"""

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.independent.compare import BASELINE, baseline_database, shipped
from bench.independent.compare import baseline_variant as baseline
from bench.readme import write_section
from bench.request_path.databases import BenchDatabases
from bench.request_path.load import LoadSpec, run_load
from bench.request_path.measure import PLAIN_TARGETS, ROUTES, LoadShape, tenant_targets, warm_up
from bench.request_path.servers import Server, ServerSpec, running_servers
from tenancy.database import bootstrap_url
from tenancy.settings import TenancySettings

LAYERS: list[tuple[str, str]] = [
    # (layer, a regex on "function (file)"), deepest match wins; the first match in this list
    # decides between patterns matching the same frame
    (
        "access log (logging, JSON formatter, write)",
        r"observability/access_log|log_format|/logging/",
    ),
    ("metrics (prometheus_client)", r"observability/metrics|prometheus_client"),
    ("RequestObserver (request id, route label, record)", r"middleware/observer"),
    ("HeaderGuard", r"middleware/header_guard"),
    ("BodySizeLimit", r"middleware/body_size"),
    ("tenant resolution + key check", r"tenancy/(middleware/tenant|keys|directory|naming)"),
    ("rate limit", r"tenancy/(middleware/rate_limit|rate_limit_records)"),
    ("VanishedSchemas + ReplayStaleStatements", r"middleware/(vanished|replay)"),
    ("session hook, BEGIN suffix, tag", r"tenancy/(session|connection|dependencies)|db_tag"),
    ("pool policy (max uses)", r"tenancy/pool"),
    ("handler (service/, baseline app)", r"service/|bench/independent/app"),
    ("SQLAlchemy (ORM, session, pool)", r"sqlalchemy"),
    ("asyncpg", r"asyncpg"),
    ("pydantic (validation, serialization)", r"pydantic"),
    ("FastAPI (routing, dependencies, response)", r"fastapi"),
    ("Starlette (middleware stack, routing)", r"starlette"),
    ("uvicorn (HTTP protocol, edge)", r"uvicorn|httptools|tenancy/edge"),
    ("asyncio / uvloop (event loop)", r"asyncio|uvloop"),
]
_RULES = [(name, re.compile(pattern)) for name, pattern in LAYERS]
OTHER = "other (interpreter, stdlib)"
RAW_DIR = os.environ.get("BENCH_PROFILE_RAW_DIR")
"""Where to keep py-spy's raw samples too (one file per server), for a closer look."""


def layer_of(stack: list[str]) -> str:
    """The layer of the deepest frame that belongs to one (frames root first)."""
    for frame in reversed(stack):
        for name, rule in _RULES:
            if rule.search(frame):
                return name
    return OTHER


def read_samples(raw: str) -> Counter[str]:
    """py-spy's raw (collapsed) output: `frame;frame;... count` per line."""
    layers: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            layers[layer_of(stack.split(";"))] += int(count)
    return layers


def profile_one(
    server: Server, targets: list[dict[str, Any]], shape: LoadShape, seconds: float, rate: int
) -> dict[str, Any]:
    """Load the server alone for `seconds` while py-spy samples it."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        command = [spy, "record", "--pid", str(server.process.pid), "--format", "raw"]
        command += ["--rate", str(rate), "--duration", str(int(seconds)), "--output", out.name]
        sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu_before = server.cpu_seconds()
        spec = LoadSpec(
            targets=[{"port": server.port, "tenants": targets}],
            routes=ROUTES,
            todos=shape.todos,
            duration=seconds,
            connections=shape.connections,
        )
        result = run_load(spec)
        cpu = server.cpu_seconds() - cpu_before
        sampler.wait(timeout=seconds + 60)
        raw = Path(out.name).read_text()
        samples = read_samples(raw)
        if RAW_DIR:
            Path(RAW_DIR, f"{server.name}.txt").write_text(raw)
    issued = result["targets"][0]["issued"]
    total = sum(samples.values()) or 1
    cpu_us = cpu / max(issued, 1) * 1e6
    return {
        "requests": issued,
        "cpu_us": cpu_us,
        "samples": total,
        "layers": {name: n / total * cpu_us for name, n in samples.most_common()},
    }


async def run_profile(seconds: float, rate: int, tenants: int, shape: LoadShape) -> dict:
    server_url = await bootstrap_url(TenancySettings())
    databases = BenchDatabases(server_url, shape.todos)
    try:
        tenant_db = await databases.with_tenants(tenants)
        plain_url = await baseline_database(databases)
        tenantry = shipped()
        specs = {
            "tenantry": ServerSpec("", {"TENANTRY_DATABASE_URL": tenant_db.url}, tenantry.command),
            BASELINE: ServerSpec(
                "",
                {"BASELINE_DATABASE_URL": plain_url, "BASELINE_POOL_SIZE": "10"},
                baseline().command,
            ),
        }
        targets = {"tenantry": tenant_targets(tenant_db.tenants), BASELINE: PLAIN_TARGETS}
        profiles = {}
        with running_servers(specs) as servers:
            for name, server in servers.items():
                await warm_up(server, targets[name], shape)
            for name, server in servers.items():
                profiles[name] = await asyncio.to_thread(
                    profile_one, server, targets[name], shape, seconds, rate
                )
        return profiles
    finally:
        await databases.drop_all()


def markdown(profiles: dict[str, Any]) -> str:
    names = list(profiles)
    header = ["layer", *(f"{n} µs/req" for n in names)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for layer in [name for name, _ in LAYERS] + [OTHER]:
        cells = [f"{profiles[n]['layers'].get(layer, 0.0):.0f}" for n in names]
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    totals = [f"**{profiles[n]['cpu_us']:.0f}**" for n in names]
    lines.append("| **app CPU per request** | " + " | ".join(totals) + " |")
    samples = [f"{profiles[n]['samples']} / {profiles[n]['requests']}" for n in names]
    lines.append("| samples / requests | " + " | ".join(samples) + " |")
    return "\n".join(lines)


def main(
    seconds: Annotated[float, typer.Option(help="Seconds of load per server")] = 15,
    rate: Annotated[int, typer.Option(help="py-spy samples per second")] = 400,
    tenants: Annotated[int, typer.Option(help="Tenants of the Tenantry server")] = 100,
    connections: Annotated[int, typer.Option(help="Keep-alive connections")] = 16,
    write: Annotated[bool, typer.Option(help="Rewrite bench/README.md's section")] = False,
) -> None:
    from datetime import UTC, datetime

    shape = LoadShape(seconds, 0.0, connections, 1, 30)
    load = os.getloadavg()[0]
    profiles = asyncio.run(run_profile(seconds, rate, tenants, shape))
    intro = (
        f"Profiled {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average (1 min) {load:.1f} "
        f"before and {os.getloadavg()[0]:.1f} after; {tenants} tenants, {connections} "
        f"connections, {seconds:.0f} s per server, both routes in turn."
    )
    table = intro + "\n\n" + markdown(profiles)
    typer.echo(table)
    if write:
        write_section(
            "<!-- independent_profile:start -->", "<!-- independent_profile:end -->", table
        )


if __name__ == "__main__":
    typer.run(main)
