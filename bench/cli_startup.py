"""What an operator waits for: each `tenantry` command as a whole process, start-up and work apart.

    python -m bench.cli_startup                                        # 1,000 tenants, 15 rounds
    python -m bench.cli_startup --django-python /tmp/djt/bin/python --write

A throwaway database with `--tenants` tenants at head (on TENANTRY_DATABASE_URL's server or the
embedded one), then `--rounds` rounds; each round runs every command once, in a rotated order,
as a real process (the console script, a new interpreter each time), so load drifts over all of
them alike. The commands: `python -c pass` (the fixed point: an interpreter that does nothing),
`tenantry --help`, `tenantry tenants create SLUG --json` (also once more with no bytecode: every
import compiled from source, as a venv installed without it and PYTHONDONTWRITEBYTECODE set
gives) and a `tenantry migrate` with nothing to do; with `--django-python` (an interpreter that
has django-tenants), django-tenants' own `manage.py --help` and `manage.py create_tenant` on an
equivalent project (bench/cli_django.py) in a second throwaway database.

- wall: p50 of the whole process, as the shell sees it;
- work: p50 of the same operation inside an already running process, in the same rounds
  (`create_tenant` on a connected engine; `nothing_to_do`, the census the CLI runs when the heads
  are cached, which opens its own connections; django-tenants' `call_command("create_tenant")`
  on a connected Django);
- start-up = wall - work: interpreter, imports, settings, engine, Alembic scripts, exit;
- CPU: p50 of the process's user + system time, which load inflates far less than wall time
  (on an idle machine, wall is about CPU plus the waits on PostgreSQL);
- modules: how many modules the process imports (`-X importtime`, one extra run);
- load: the 1-minute load average, sampled once per round (min, median, max): the machine is
  shared, and wall times grow with it.
"""

import argparse
import asyncio
import io
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.cli_django import DjangoProject, make_project
from bench.readme import write_section
from service.onboarding import tenant_blueprint
from service.paths import ALEMBIC_INI, PROJECT_ROOT
from tenancy.database import asyncpg_dsn, database_url
from tenancy.lifecycle.onboarding import create_tenant
from tenancy.migrate.connections import open_connections
from tenancy.migrate.heads import cached_heads, load_tracks_remembering_heads
from tenancy.migrate.noop import nothing_to_do
from tenancy.migrate.progress import reporter_for
from tenancy.migrate.tracks import load_tracks
from tenancy.settings import TenancySettings
from tenancy.testing.fleets import Fleet, throwaway_fleet
from tenancy.testing.throwaway import throwaway_url

RESULTS = PROJECT_ROOT / "bench" / "results" / "cli_startup.json"
START, END = "<!-- cli_startup:start -->", "<!-- cli_startup:end -->"
TENANTRY = str(Path(sys.executable).parent / "tenantry")
PASS = "`python -c pass`"
EMPTY_PYCACHE = tempfile.mkdtemp(prefix="tenantry-no-pyc-")
"""PYTHONPYCACHEPREFIX for the no-bytecode row: Python looks for .pyc files only here (none)."""
Work = Callable[[str], Awaitable[float]]


@dataclass
class Command:
    label: str
    argv: Callable[[str], list[str]]
    """The command line, given a fresh slug (commands that create a tenant need one each time)."""
    env: Mapping[str, str]
    work: Work | None = None
    """The same operation in an already running process: seconds, given a fresh slug."""
    django_peer: str | None = None
    """The django-tenants row this one is compared with."""
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    works: list[float] = field(default_factory=list)
    modules: int = 0

    def run(self, slug: str) -> tuple[float, float]:
        """(wall, CPU) seconds of one process; commands run one at a time, so the children's
        usage grows by this one's alone."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(
            self.argv(slug), cwd=PROJECT_ROOT, env=dict(self.env), capture_output=True, text=True
        )
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            raise RuntimeError(f"{self.label} exited {result.returncode}: {result.stderr}")
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        return wall, cpu

    def count_modules(self, slug: str) -> None:
        argv = self.argv(slug)
        if not Path(argv[0]).name.startswith("python"):  # a console script: its own interpreter
            argv = [Path(argv[0]).read_text().splitlines()[0].removeprefix("#!"), *argv]
        result = subprocess.run(
            [argv[0], "-X", "importtime", *argv[1:]],
            cwd=PROJECT_ROOT,
            env=dict(self.env),
            capture_output=True,
            text=True,
        )
        lines = result.stderr.splitlines()
        self.modules = sum(1 for line in lines if line.startswith("import time:")) - 1  # header

    def row(self) -> dict[str, object]:
        wall = statistics.median(self.walls)
        work = statistics.median(self.works) if self.works else 0.0
        return {
            "command": self.label,
            "wall_p50": wall,
            "cpu_p50": statistics.median(self.cpus),
            "work_p50": work,
            "startup_p50": wall - work,
            "modules": self.modules,
            "walls": self.walls,
            "cpus": self.cpus,
            "works": self.works,
            "django_peer": self.django_peer,
        }


def fresh_slug(prefix: str = "cli") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def tenantry_commands(fleet: Fleet, baseline: str | None = None) -> list[Command]:
    """`baseline`: another checkout's `tenantry` (e.g. main's), measured in the same rounds."""
    env = {**os.environ, "TENANTRY_DATABASE_URL": fleet.url}
    no_bytecode = {**env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": EMPTY_PYCACHE}
    tracks = load_tracks_remembering_heads(ALEMBIC_INI)  # as a first `tenantry migrate` does
    heads = cached_heads(ALEMBIC_INI)
    if heads is None:
        raise RuntimeError("the heads are not cached: is migrations/__pycache__ writable?")
    blueprint = tenant_blueprint(tracks)

    async def create(slug: str) -> float:
        started = time.perf_counter()
        await create_tenant(fleet.engine, blueprint, slug)
        return time.perf_counter() - started

    async def noop_migrate(_slug: str) -> float:
        started = time.perf_counter()
        reporter = reporter_for(io.StringIO())
        summary = await nothing_to_do(asyncpg_dsn(fleet.url), heads, (), 4, reporter)
        if summary is None:
            raise RuntimeError("not a no-op: a tenant or the shared schema is not at head")
        return time.perf_counter() - started

    commands = [Command(PASS, lambda _slug: [sys.executable, "-c", "pass"], env)]
    for tenantry, suffix in [(TENANTRY, ""), *([(baseline, " (baseline)")] if baseline else [])]:
        commands += [
            Command(
                f"`tenantry --help`{suffix}",
                lambda _slug, tenantry=tenantry: [tenantry, "--help"],
                env,
                django_peer="`manage.py --help`",
            ),
            *(
                Command(
                    f"`tenantry tenants create SLUG --json`{variant}{suffix}",
                    lambda slug, tenantry=tenantry: [tenantry, "tenants", "create", slug, "--json"],
                    variant_env,
                    work=create,
                    django_peer="`manage.py create_tenant ... --noinput`",
                )
                for variant, variant_env in (("", env), (", no bytecode", no_bytecode))
            ),
            Command(
                f"`tenantry migrate`, nothing to do ({len(fleet.tenants):,} tenants){suffix}",
                lambda _slug, tenantry=tenantry: [tenantry, "migrate"],
                env,
                work=noop_migrate,
            ),
        ]
    return commands


def django_commands(project: DjangoProject) -> list[Command]:
    async def create(slug: str) -> float:
        warm_up, measured = slug.replace("-", "_") + "_w", slug.replace("-", "_")
        seconds = await asyncio.to_thread(project.work_seconds, [warm_up, measured])
        return seconds[1]

    return [
        Command("`manage.py --help`", lambda _slug: project.manage("--help"), project.env),
        Command(
            "`manage.py create_tenant ... --noinput`",
            lambda slug: project.create_tenant(slug.replace("-", "_")),
            project.env,
            work=create,
        ),
    ]


async def measure(commands: list[Command], rounds: int, loads: list[float]) -> None:
    for command in commands:  # warm-up: page cache, bytecode; not counted
        command.run(fresh_slug("warm"))
        if command.work is not None:
            await command.work(fresh_slug("warm"))
    for number in range(rounds):
        loads.append(os.getloadavg()[0])
        shift = number % len(commands)
        for command in commands[shift:] + commands[:shift]:
            wall, cpu = await asyncio.to_thread(command.run, fresh_slug())
            command.walls.append(wall)
            command.cpus.append(cpu)
            if command.work is not None:
                command.works.append(await command.work(fresh_slug()))
        print(
            f"  round {number + 1}/{rounds}: " + ", ".join(f"{c.walls[-1]:.2f}" for c in commands)
        )
    for command in commands:
        command.count_modules(fresh_slug("mods"))


def table(rows: list[dict]) -> str:
    by_label = {row["command"]: row for row in rows}
    fixed = by_label[PASS]["wall_p50"]
    lines = [
        "| command | wall p50 | of which start-up | of which work | CPU p50 | modules | "
        "vs `python -c pass` | vs django-tenants' CLI (wall; CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        peer = by_label.get(row["django_peer"] or "")
        versus = (
            f"{row['wall_p50'] / peer['wall_p50']:.2f}x; {row['cpu_p50'] / peer['cpu_p50']:.2f}x"
            if peer
            else "-"
        )
        work = f"{row['work_p50'] * 1000:.0f} ms" if row["works"] else "-"
        lines.append(
            f"| {row['command']} | **{row['wall_p50']:.2f} s** | {row['startup_p50']:.2f} s"
            f" | {work} | {row['cpu_p50']:.2f} s | {row['modules']:,}"
            f" | {row['wall_p50'] / fixed:.1f}x | {versus} |"
        )
    return "\n".join(lines)


async def run(
    tenants: int, rounds: int, django_python: str | None, baseline: str | None, loads: list[float]
) -> tuple[str, str | None, list[dict]]:
    server_url = await database_url(TenancySettings())
    async with open_connections(asyncpg_dsn(server_url), 1) as (conn,):
        server = (await conn.fetchval("SHOW server_version")).split()[0]
    async with throwaway_fleet(
        throwaway_url(server_url, "clibench"), ALEMBIC_INI, pool_size=8
    ) as fleet:
        started = time.perf_counter()
        await add_tenants(fleet, tenants)
        print(f"setup: {tenants} tenants in {time.perf_counter() - started:.1f} s")
        commands = tenantry_commands(fleet, baseline)
        django_version = None
        with tempfile.TemporaryDirectory() as folder:
            if django_python:
                async with throwaway_fleet(
                    throwaway_url(server_url, "clibench_dj"), ALEMBIC_INI
                ) as other:
                    project = make_project(django_python, Path(folder), other.url)
                    django_version = project.version()
                    commands += django_commands(project)
                    await measure(commands, rounds, loads)
            else:
                await measure(commands, rounds, loads)
    return server, django_version, [command.row() for command in commands]


async def add_tenants(fleet: Fleet, count: int, concurrency: int = 8) -> None:
    """`count` tenants at head, built the way the CLI builds them (the fast path)."""
    blueprint = tenant_blueprint(load_tracks(ALEMBIC_INI))
    names = iter(f"fleet-{n}" for n in range(count))

    async def onboard() -> None:
        for slug in names:
            fleet.tenants.append(await create_tenant(fleet.engine, blueprint, slug))

    await asyncio.gather(*(onboard() for _ in range(concurrency)))


URL_VARIABLES = (
    "TENANTRY_DATABASE_URL",
    "TENANTRY_OWNER_DATABASE_URL",
    "TENANTRY_BOOTSTRAP_DATABASE_URL",
)


def embedded_start(rounds: int) -> str:
    """`tenantry migrate` with nothing to do (no tenants) on the embedded server, apart from the
    table: no URL set, so each process starts the server and stops it as it exits. The cluster
    (in a scratch TENANTRY_DATA_DIR under .tenantry/, removed afterwards) is made by a first run
    that is not counted."""
    data_dir = PROJECT_ROOT / ".tenantry" / f"bench-embedded-{secrets.token_hex(4)}"
    env = {k: v for k, v in os.environ.items() if k not in URL_VARIABLES}
    command = Command(
        "embedded", lambda _slug: [TENANTRY, "migrate"], env | {"TENANTRY_DATA_DIR": str(data_dir)}
    )
    try:
        command.run("")
        for _ in range(rounds):
            wall, cpu = command.run("")
            command.walls.append(wall)
            command.cpus.append(cpu)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return (
        f"Without a URL (the embedded server, started and stopped by each process), the same "
        f"`tenantry migrate` with nothing to do (no tenants): wall p50 "
        f"**{statistics.median(command.walls):.2f} s**, CPU p50 "
        f"{statistics.median(command.cpus):.2f} s, {rounds} runs after the table's rounds."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000, help="tenants in the fleet")
    parser.add_argument("--rounds", type=int, default=15, help="runs of each command")
    parser.add_argument(
        "--django-python",
        help="an interpreter with django-tenants and psycopg2 installed, for the comparison",
    )
    parser.add_argument(
        "--baseline",
        help="another checkout's `tenantry` executable (e.g. main's), for before/after rows",
    )
    parser.add_argument(
        "--embedded-rounds",
        type=int,
        default=5,
        help="runs of `tenantry migrate` on the embedded server, reported apart (0: none)",
    )
    parser.add_argument(
        "--write", action="store_true", help="rewrite bench/README.md's section, keep the JSON"
    )
    args = parser.parse_args(argv)
    load_before, loads = os.getloadavg()[0], []
    server, django_version, rows = asyncio.run(
        run(args.tenants, args.rounds, args.django_python, args.baseline, loads)
    )
    compared = "django-tenants not installed"
    if django_version:
        django_tenants, django = django_version.split()
        compared = f"django-tenants {django_tenants} (Django {django})"
    markdown = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M')}, PostgreSQL {server}, {os.cpu_count()} "
        f"cores, load average (1 min) {load_before:.1f} before and {os.getloadavg()[0]:.1f} "
        f"after the run, {min(loads):.1f} / {statistics.median(loads):.1f} / {max(loads):.1f} "
        f"(min / median / max of the rounds); {args.rounds} rounds, {args.tenants:,} tenants, "
        + compared
        + ".\n\n"
        + table(rows)
    )
    if args.embedded_rounds:
        markdown += "\n\n" + embedded_start(args.embedded_rounds)
    print("\n" + markdown)
    if args.write:
        write_section(START, END, markdown)
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
