"""`tenantry migrate`'s engine on real fleets: concurrency, failures, locks, moving targets."""

import asyncio
import contextlib
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.database import asyncpg_dsn
from tenancy.lifecycle.archive import archive_tenant, purge_tenant
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.migrate.census import TenantRef
from tenancy.migrate.connections import open_connections
from tenancy.migrate.fast_path import Job, migrate_tenant
from tenancy.migrate.lock import MigrationInProgress, exclusive_run
from tenancy.migrate.render import render_sql
from tenancy.migrate.results import LockPolicy, Outcome, Summary, is_lock_conflict
from tenancy.migrate.targets import Step
from tenancy.migrate.tracks import Tracks, load_tracks
from tenancy.naming import quote_schema
from tenancy.testing.fleets import ADD_PRIORITY, LIVE_BACKFILL, PROJECT_HEAD, Fleet
from tests.support.lifecycle import wait_for_blocked
from tests.support.migrate import catalog_of, columns_of, revision_of, scratch_alembic
from tests.support.project import run_alembic

FAST_BACKOFF = {"backoff": 0.01}


@pytest.fixture(scope="module")
def one_step(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alembic.ini of a copy of the project with one more tenant revision (0002, add column)."""
    return scratch_alembic(tmp_path_factory.mktemp("one_step"), [ADD_PRIORITY])


@pytest.fixture(scope="module")
def with_live_step(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """...and 0003, which inspects the database and so needs a live Alembic context."""
    return scratch_alembic(tmp_path_factory.mktemp("live"), [ADD_PRIORITY, LIVE_BACKFILL])


def outcomes(summary: Summary) -> dict[str, tuple[Outcome, str | None]]:
    return {r.tenant.slug: (r.outcome, r.error) for r in summary.results}


async def add_todo(fleet: Fleet, tenant: CreatedTenant, content: str) -> None:
    async with fleet.engine.begin() as conn:
        await conn.execute(
            text(f"INSERT INTO {quote_schema(tenant.schema)}.todos (content) VALUES (:c)"),
            {"c": content},
        )


async def hold_lock_on_todos(conn: AsyncConnection, tenant: CreatedTenant) -> None:
    """What a long request does: an open transaction that has read the tenant's todos."""
    await conn.begin()
    await conn.execute(text(f"SELECT count(*) FROM {quote_schema(tenant.schema)}.todos"))


async def wait_for_a_blocked_lock(fleet: Fleet) -> None:
    query = text(
        "SELECT count(*) FROM pg_locks WHERE NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    async with fleet.engine.connect() as conn:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):  # a hang guard: the run starts late on a busy machine
                while True:
                    if await conn.scalar(query):
                        return
                    await asyncio.sleep(0.01)
    raise AssertionError("the migration never waited for the lock")


async def test_many_tenants_side_by_side_each_get_every_revision(
    fleet: Fleet, with_live_step: Path
) -> None:
    await fleet.add_tenants("c", 24)
    for n, tenant in enumerate(fleet.tenants):
        await add_todo(fleet, tenant, "x" * (n + 1))
    tracks = load_tracks(with_live_step)

    rendered = await fleet.migrate(tracks, target="0002", concurrency=8)
    assert rendered.count(Outcome.MIGRATED) == 24, fleet.log.getvalue()
    for tenant in fleet.tenants:
        assert "priority" in await columns_of(fleet.engine, tenant.schema, "todos")
        assert await revision_of(fleet.engine, tenant.schema) == "0002"

    live = await fleet.migrate(tracks, concurrency=8)
    assert live.count(Outcome.MIGRATED) == 24, fleet.log.getvalue()
    async with fleet.engine.connect() as conn:
        for tenant in fleet.tenants:
            schema = quote_schema(tenant.schema)
            rows = await conn.execute(text(f"SELECT priority, length(content) FROM {schema}.todos"))
            assert [(p, n) for p, n in rows if p != n] == []
            assert await has_priority_index(conn, tenant.schema)
            assert await revision_of(fleet.engine, tenant.schema) == "0003"

    half = tuple(tenant.slug for tenant in fleet.tenants[::2])
    assert (await fleet.migrate(tracks, target="0001", slugs=half)).count(Outcome.MIGRATED) == 12
    mixed = await fleet.migrate(tracks, target="0002", concurrency=8)  # fast lanes + contexts
    assert mixed.count(Outcome.MIGRATED) == 24, fleet.log.getvalue()
    async with fleet.engine.connect() as conn:
        for tenant in fleet.tenants:
            assert "priority" in await columns_of(fleet.engine, tenant.schema, "todos")
            assert not await has_priority_index(conn, tenant.schema)
            assert await revision_of(fleet.engine, tenant.schema) == "0002"


async def has_priority_index(conn: AsyncConnection, schema: str) -> bool:
    return bool(
        await conn.scalar(
            text(
                "SELECT count(*) FROM pg_indexes WHERE schemaname = :schema"
                " AND tablename = 'todos' AND indexname = 'ix_todos_priority'"
            ),
            {"schema": schema},
        )
    )


async def test_rendered_sql_leaves_the_catalog_plain_alembic_leaves(
    fleet: Fleet, one_step: Path
) -> None:
    await fleet.add_tenants("r", 2)
    by_engine, by_alembic = fleet.tenants
    summary = await fleet.migrate(load_tracks(one_step), slugs=(by_engine.slug,))
    assert outcomes(summary) == {by_engine.slug: (Outcome.MIGRATED, None)}
    result = await asyncio.to_thread(
        run_alembic,
        *("-x", f"tenant={by_alembic.slug}", "upgrade", "head"),
        env=fleet.env(one_step),
        config=one_step,
    )
    assert result.returncode == 0, result.stderr
    assert await revision_of(fleet.engine, by_alembic.schema) == "0002"
    assert await catalog_of(fleet.engine, by_engine.schema) == await catalog_of(
        fleet.engine, by_alembic.schema
    )


async def test_downgrades_to_base_and_back_leave_identical_schemas(
    fleet: Fleet, one_step: Path
) -> None:
    await fleet.add_tenants("d", 3)
    tracks = load_tracks(one_step)
    await fleet.migrate(tracks)
    at_head = {t.slug: await catalog_of(fleet.engine, t.schema) for t in fleet.tenants}

    assert (await fleet.migrate(tracks, target="-1")).count(Outcome.MIGRATED) == 3
    for tenant in fleet.tenants:
        assert await revision_of(fleet.engine, tenant.schema) == PROJECT_HEAD
        assert "priority" not in await columns_of(fleet.engine, tenant.schema, "todos")
    assert (await fleet.migrate(tracks, target="base")).count(Outcome.MIGRATED) == 3
    for tenant in fleet.tenants:
        catalog = await catalog_of(fleet.engine, tenant.schema)
        assert {table for table, *_ in catalog["columns"]} == {"alembic_version"}
        assert await revision_of(fleet.engine, tenant.schema) is None

    assert (await fleet.migrate(tracks)).count(Outcome.MIGRATED) == 3
    assert {t.slug: await catalog_of(fleet.engine, t.schema) for t in fleet.tenants} == at_head


async def test_a_failing_tenant_is_left_untouched_and_does_not_stop_the_others(
    fleet: Fleet, one_step: Path
) -> None:
    await fleet.add_tenants("f", 5, concurrency=1)  # registry order is slug order
    broken = fleet.tenants[0]
    async with fleet.engine.begin() as conn:
        await conn.execute(
            text(f"ALTER TABLE {quote_schema(broken.schema)}.todos ADD COLUMN priority text")
        )
    before = await catalog_of(fleet.engine, broken.schema)
    tracks = load_tracks(one_step)

    stopped = await fleet.migrate(tracks, concurrency=1, fail_fast=True)
    assert (stopped.count(Outcome.FAILED), stopped.count(Outcome.SKIPPED)) == (1, 4)
    assert stopped.count(Outcome.MIGRATED) == 0

    summary = await fleet.migrate(tracks, concurrency=3)
    outcome, error = outcomes(summary)[broken.slug]
    assert outcome is Outcome.FAILED
    assert error and error.startswith("DuplicateColumnError") and "\n" not in error
    assert summary.count(Outcome.MIGRATED) == 4
    assert f"failed {broken.slug}" in fleet.log.getvalue()
    assert await catalog_of(fleet.engine, broken.schema) == before
    assert await revision_of(fleet.engine, broken.schema) == PROJECT_HEAD
    for tenant in fleet.tenants[1:]:
        assert await revision_of(fleet.engine, tenant.schema) == "0002"


async def test_a_tenant_that_moved_since_the_plan_is_not_touched(
    fleet: Fleet, one_step: Path
) -> None:
    await fleet.add_tenants("m", 1)
    tenant = fleet.tenants[0]
    script = load_tracks(one_step).tenant
    stale = Step("0002", PROJECT_HEAD, downgrade=True)  # planned as if it were at 0002
    job = Job(
        TenantRef(0, tenant.slug, tenant.schema),
        stale,
        render_sql(script, "0002", PROJECT_HEAD, downgrade=True),
    )
    before = await catalog_of(fleet.engine, tenant.schema)
    async with open_connections(asyncpg_dsn(fleet.url), 1) as (conn,):
        result = await migrate_tenant(conn, job, LockPolicy())
    assert result.outcome is Outcome.MOVED
    assert await catalog_of(fleet.engine, tenant.schema) == before


async def test_lock_timeouts_back_off_retry_and_give_up_after_a_bound(
    fleet: Fleet, one_step: Path
) -> None:
    await fleet.add_tenants("l", 3)
    busy = fleet.tenants[0]
    tracks = load_tracks(one_step)
    async with fleet.engine.connect() as request:
        await hold_lock_on_todos(request, busy)
        gave_up = await fleet.migrate(
            tracks, lock=LockPolicy(timeout_ms=50, retries=1, **FAST_BACKOFF)
        )
        outcome, error = outcomes(gave_up)[busy.slug]
        assert outcome is Outcome.FAILED and error and "LockNotAvailable" in error
        assert next(r for r in gave_up.results if r.tenant.slug == busy.slug).attempts == 2
        assert gave_up.count(Outcome.MIGRATED) == 2

        # Each attempt waits up to 1 s: long enough to be seen waiting (the run starts later on
        # Citus than a fixed sleep allowed); the lock is then held past that second, so the
        # attempt seen waiting times out and the run retries.
        patient = asyncio.create_task(
            fleet.migrate(tracks, lock=LockPolicy(timeout_ms=1000, retries=30, **FAST_BACKOFF))
        )
        await wait_for_blocked(fleet.engine, 1)
        await asyncio.sleep(1.5)
        await request.rollback()
        summary = await patient
    result = next(r for r in summary.results if r.tenant.slug == busy.slug)
    assert result.outcome is Outcome.MIGRATED and result.attempts > 1
    assert await revision_of(fleet.engine, busy.schema) == "0002"


async def test_a_tenant_onboarded_during_the_run_ends_at_the_target(
    fleet: Fleet, one_step: Path, tracks: Tracks
) -> None:
    await fleet.add_tenants("o", 3)
    async with fleet.engine.connect() as request:
        await hold_lock_on_todos(request, fleet.tenants[0])
        run = asyncio.create_task(
            fleet.migrate(load_tracks(one_step), concurrency=1, lock=LockPolicy(timeout_ms=30_000))
        )
        await wait_for_a_blocked_lock(fleet)
        await fleet.add_tenants("late", 1)  # onboarded with the old head, mid-run
        await request.rollback()
        summary = await run
    late = next(t for t in fleet.tenants if t.slug.startswith("late"))
    assert outcomes(summary)[late.slug] == (Outcome.MIGRATED, None)
    assert summary.count(Outcome.MIGRATED) == 4
    assert await revision_of(fleet.engine, late.schema) == "0002"


async def test_a_second_run_is_refused_while_one_holds_the_lock(
    fleet: Fleet, one_step: Path
) -> None:
    await fleet.add_tenants("s", 1)
    async with exclusive_run(asyncpg_dsn(fleet.url)):
        with pytest.raises(MigrationInProgress, match="another migrate run is in progress"):
            await fleet.migrate(load_tracks(one_step))
    assert await revision_of(fleet.engine, fleet.tenants[0].schema) == PROJECT_HEAD
    assert (await fleet.migrate(load_tracks(one_step))).count(Outcome.MIGRATED) == 1


async def test_archived_tenants_are_left_alone(fleet: Fleet, one_step: Path) -> None:
    await fleet.add_tenants("arc", 2)
    archived, live = fleet.tenants
    change = await archive_tenant(fleet.engine, archived.slug)
    try:
        summary = await fleet.migrate(load_tracks(one_step))
        assert summary.ok
        assert outcomes(summary) == {live.slug: (Outcome.MIGRATED, None)}
        assert "priority" in await columns_of(fleet.engine, live.schema, "todos")
        assert "priority" not in await columns_of(fleet.engine, change.archived_schema, "todos")
    finally:
        await purge_tenant(fleet.engine, archived.slug)


async def test_a_real_deadlock_is_retried_like_a_lock_timeout(database: str) -> None:
    """docs/migrations.md: deadlocks are retried as lock timeouts are. The retry loop (tested
    above with lock timeouts) retries what `is_lock_conflict` says yes to; here a real deadlock
    between two connections says yes, and a unique-violation error (the control) says no."""
    dsn = asyncpg_dsn(database)
    first, second = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        await first.execute(
            "CREATE TABLE deadlock_probe (id int PRIMARY KEY);"
            " INSERT INTO deadlock_probe VALUES (1), (2)"
        )
        async with first.transaction(), second.transaction():
            await first.execute("UPDATE deadlock_probe SET id = id WHERE id = 1")
            await second.execute("UPDATE deadlock_probe SET id = id WHERE id = 2")
            crossed = await asyncio.gather(
                first.execute("UPDATE deadlock_probe SET id = id WHERE id = 2"),
                second.execute("UPDATE deadlock_probe SET id = id WHERE id = 1"),
                return_exceptions=True,
            )
            raise _Done(crossed)
    except _Done as done:
        errors = [result for result in done.crossed if isinstance(result, BaseException)]
    finally:
        with contextlib.suppress(asyncpg.PostgresError):
            await first.execute("DROP TABLE deadlock_probe")
        await first.close()
        await second.close()
    assert len(errors) == 1 and is_lock_conflict(errors[0]), errors
    duplicate = asyncpg.UniqueViolationError("duplicate key")
    assert duplicate.sqlstate == "23505" and not is_lock_conflict(duplicate)


class _Done(Exception):
    """Leaves both transactions (rolled back) with what the crossed updates returned."""

    def __init__(self, crossed: list[object]) -> None:
        super().__init__("done")
        self.crossed = crossed
