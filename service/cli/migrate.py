"""`tenantry migrate`: the shared schema, then every tenant schema; `tenantry migrate status`."""

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from service.cli.common import EXPECTED_ERRORS, begin_work, fail, output_closed
from service.cli.interrupts import INTERRUPTS, Interrupted
from service.paths import ALEMBIC_INI
from tenancy.one_line import first_line

if TYPE_CHECKING:  # each command imports what it uses when it runs: --help stays light
    from tenancy.migrate.progress import Reporter
    from tenancy.migrate.results import Summary
    from tenancy.migrate.status import FleetStatus
    from tenancy.migrate.verify import Drift

T = TypeVar("T")
BEHIND_SHOWN = 20

app = typer.Typer(
    rich_markup_mode=None,  # plain help and errors (service.cli.entry makes errors one line)
    help="Migrate the shared schema and every tenant schema.",
)

Config = Annotated[
    Path,
    typer.Option(
        "--config",
        metavar="FILE",
        envvar="TENANTRY_ALEMBIC_INI",
        help="alembic.ini naming the two tracks",
        exists=True,
        dir_okay=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="JSON for automation")]


@app.callback(invoke_without_command=True)
def migrate(
    ctx: typer.Context,
    to: Annotated[
        str,
        typer.Option(
            "--to", metavar="REVISION", help="Tenant revision: an id, head, base, -1, +1 ..."
        ),
    ] = "head",
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", metavar="SLUG", help="Only this tenant (repeatable)"),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, metavar="N", help="Connections migrating side by side")
    ] = 4,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop at the first failure")
    ] = False,
    as_json: Json = False,
    sql: Annotated[
        bool, typer.Option("--sql", help="Print each tenant's SQL; change nothing")
    ] = False,
    lock_timeout: Annotated[
        float,
        typer.Option(
            min=0.001,
            metavar="SECONDS",
            envvar="TENANTRY_MIGRATE_LOCK_TIMEOUT",
            help="Seconds a tenant's DDL may wait for a lock before it backs off",
        ),
    ] = 2.0,
    lock_retries: Annotated[
        int, typer.Option(min=0, metavar="N", help="Attempts after a lock timeout, per tenant")
    ] = 3,
    config: Config = ALEMBIC_INI,
) -> None:
    """Bring the shared schema to head, then every tenant (or --tenant ones) to --to."""
    if ctx.invoked_subcommand is not None:
        return
    from tenancy.migrate.progress import reporter_for

    slugs = tuple(tenant or ())
    reporter = reporter_for(sys.stdout, as_json=as_json)
    if to == "head" and not sql:  # nothing to do is told without Alembic (tenancy.migrate.noop)
        settled = _run(lambda url: _nothing_to_do(url, config, slugs, concurrency, reporter))
        if settled is not None:
            _record(settled)
            return
    from tenancy.migrate.heads import load_tracks_remembering_heads
    from tenancy.migrate.results import LockPolicy
    from tenancy.migrate.run import RunOptions, migrate_fleet

    tracks = load_tracks_remembering_heads(config)
    if sql:
        from tenancy.migrate.preview import print_sql

        _run(lambda url: print_sql(url, tracks, to, slugs, sys.stdout))
        return
    options = RunOptions(
        target=to,
        slugs=slugs,
        concurrency=concurrency,
        fail_fast=fail_fast,
        lock=LockPolicy(timeout_ms=max(1, round(lock_timeout * 1000)), retries=lock_retries),
    )
    summary: Summary = _run(lambda url: migrate_fleet(url, tracks, options, reporter))
    _record(summary)
    if not summary.ok:
        raise typer.Exit(1)


@app.command("status")
def status(
    as_json: Json = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Also compare each tenant's catalog with what its stamped revision builds; "
            "exit 1 when one differs or cannot be checked",
        ),
    ] = False,
    config: Config = ALEMBIC_INI,
) -> None:
    """How many tenants sit at each revision, which are behind, and the shared schema's revision."""
    from tenancy.migrate.status import fleet_status
    from tenancy.migrate.tracks import load_tracks

    tracks = load_tracks(config)
    fleet: FleetStatus = _run(lambda url: fleet_status(url, tracks))
    drifted: list[Drift] = []
    if verify and fleet.shared_revision is not None:
        from tenancy.migrate.verify import verify_fleet

        drifted = _run(lambda url: verify_fleet(url, tracks))
    if as_json:
        record = fleet.record()
        if verify:
            record["drifted"] = [drift.record() for drift in drifted]
        typer.echo(json.dumps(record))
    else:
        for line in _status_lines(fleet):
            typer.echo(line)
        for drift in drifted:
            typer.echo(drift.line())
        if verify:
            typer.echo(
                f"verified: {fleet.tenants - len(fleet.problems) - len(drifted)} match their "
                f"revision, {len(drifted)} drifted, {len(fleet.problems)} not checkable"
            )
    if verify and (drifted or fleet.problems):
        raise typer.Exit(1)


def migrate_all() -> None:
    """Everything to head with the defaults (what `make run` does before serving)."""
    from tenancy.migrate.progress import reporter_for
    from tenancy.migrate.run import RunOptions, migrate_fleet
    from tenancy.migrate.tracks import load_tracks

    tracks = load_tracks(ALEMBIC_INI)
    reporter = reporter_for(sys.stdout)
    summary: Summary = _run(lambda url: migrate_fleet(url, tracks, RunOptions(), reporter))
    _record(summary)
    if not summary.ok:
        raise typer.Exit(1)


async def _nothing_to_do(
    url: str, config: Path, slugs: tuple[str, ...], concurrency: int, reporter: "Reporter"
) -> "Summary | None":
    from tenancy.dsn import plain_dsn
    from tenancy.migrate.heads import cached_heads
    from tenancy.migrate.noop import nothing_to_do

    heads = cached_heads(config)
    if heads is None:
        return None
    return await nothing_to_do(plain_dsn(url), heads, slugs, concurrency, reporter)


def _record(summary: "Summary") -> None:
    """Best effort, for /metrics: an unreachable registry records nothing and the run's own
    outcome stands."""
    import asyncpg

    from tenancy.observability.migrate_runs import record_migrate_run

    async def main(url: str) -> None:
        from tenancy.dsn import plain_dsn

        conn = await asyncpg.connect(plain_dsn(url))
        try:
            failed = len(summary.failures) + len(summary.missing)
            await record_migrate_run(conn, summary.seconds, not summary.ok, failed)
        finally:
            await conn.close()

    with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        asyncio.run(_with_owner_url(main))


def _run(main: Callable[[str], Awaitable[T]]) -> T:
    """Run against the configured database; expected errors are one line on stderr, exit 1."""
    from tenancy.migrate.lock import MigrationInProgress

    begin_work()
    INTERRUPTS.install()
    try:
        try:
            return asyncio.run(INTERRUPTS.guard(_with_owner_url(main)))
        except BaseException:
            # SIGINT or SIGTERM cancelled the run: each tenant's transaction in flight rolled
            # back, those done stay done; one line, exit 130 or 143 (service.cli.interrupts)
            if INTERRUPTS.received is None:
                raise
            raise Interrupted(INTERRUPTS.received) from None
    except BrokenPipeError:
        output_closed()
        raise  # unreachable: output_closed() exits
    except (MigrationInProgress, *database_errors(), *EXPECTED_ERRORS) as exc:
        fail(first_line(exc))
        raise  # unreachable: fail() exits


async def _with_owner_url(main: Callable[[str], Awaitable[T]]) -> T:
    from tenancy.dsn import owner_url
    from tenancy.settings import get_settings

    return await main(await owner_url(get_settings()))


def database_errors() -> tuple[type[Exception], ...]:
    """The database refused or went away: one line, exit 1 (every tenant is whole either way).

    SQLAlchemy's DBAPIError only when SQLAlchemy was imported: a run that never loaded it (one
    with nothing to do) cannot have raised it, and should not import it to say so."""
    import asyncpg

    errors: tuple[type[Exception], ...] = (asyncpg.PostgresError, asyncpg.InterfaceError)
    if "sqlalchemy.exc" in sys.modules:
        errors += (sys.modules["sqlalchemy.exc"].DBAPIError,)
    return errors


def _status_lines(fleet: "FleetStatus") -> list[str]:
    lines = [
        f"shared schema: {fleet.shared_revision or 'base'} (head {fleet.shared_head})",
        f"tenants: {fleet.tenants} (tenant head {fleet.tenant_head})",
    ]
    for revision, count in fleet.revisions.items():
        mark = "  (head)" if revision == fleet.tenant_head else ""
        lines.append(f"  {revision}: {count}{mark}")
    if fleet.behind:
        shown = ", ".join(fleet.behind[:BEHIND_SHOWN])
        more = len(fleet.behind) - BEHIND_SHOWN
        lines.append(
            f"behind ({len(fleet.behind)}): {shown}" + (f" and {more} more" if more > 0 else "")
        )
    for slug, reason in fleet.problems.items():
        lines.append(f"problem {slug}: {reason}")
    return lines
