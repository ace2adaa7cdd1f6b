"""The fast path: a group's pre-rendered SQL run in each tenant's own transaction.

Plain asyncpg on a few reused connections, no Alembic context: Alembic's module-global `op`
proxy is never touched here, so the connections can run side by side in one event loop.
Inside each tenant's transaction the version row is locked and compared with the plan first:
the rendered `UPDATE alembic_version ... WHERE version_num = 'a'` would otherwise update
nothing, silently, on a tenant that moved since the plan was made.
"""

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import asyncpg

from tenancy.migrate.census import TenantRef
from tenancy.migrate.connections import side_by_side
from tenancy.migrate.results import (
    Attempt,
    LockPolicy,
    Outcome,
    TenantResult,
    expected_heads,
    is_lock_conflict,
)
from tenancy.migrate.targets import Step
from tenancy.search_path import ENTER_SCHEMA_WITH_LOCK_TIMEOUT, search_path_value

HAS_VERSION_TABLE = "SELECT to_regclass('alembic_version') IS NOT NULL"
LOCK_VERSION_ROWS = "SELECT version_num FROM alembic_version FOR UPDATE"


@dataclass(frozen=True, slots=True)
class Job:
    tenant: TenantRef
    step: Step
    sql: str
    statements: tuple[str, ...] = ()
    """What is sent, in order; empty: `sql` as one script (tenancy.citus.statements_for)."""


async def run_jobs(
    connections: list[asyncpg.Connection],
    jobs: Iterable[Job],
    policy: LockPolicy,
    report: Callable[[TenantResult], None],
    stop: Callable[[], bool],
) -> None:
    """Each connection takes the next job until none are left (or `stop()` says so)."""
    queue = iter(jobs)

    async def lane(conn: asyncpg.Connection) -> None:
        for job in queue:
            if stop():
                return
            report(await migrate_tenant(conn, job, policy))

    await side_by_side(*(lane(conn) for conn in connections))


async def migrate_tenant(conn: asyncpg.Connection, job: Job, policy: LockPolicy) -> TenantResult:
    """One tenant, all or nothing, retried on lock timeouts and deadlocks."""
    attempt = Attempt(job.tenant, job.step)
    while True:
        attempt.count += 1
        try:
            async with conn.transaction():
                await conn.fetchrow(
                    ENTER_SCHEMA_WITH_LOCK_TIMEOUT,
                    search_path_value(job.tenant.schema),
                    policy.setting,
                )
                found = await _lock_version(conn, job.step)
                if found != expected_heads(job.step):
                    return attempt.moved(found)
                for statement in job.statements or (job.sql,):
                    await conn.execute(statement)
            return attempt.ended(Outcome.MIGRATED)
        except asyncpg.PostgresError as exc:
            if not is_lock_conflict(exc) or attempt.count > policy.retries:
                return attempt.failed(exc)
        await asyncio.sleep(policy.pause(attempt.count))


async def _lock_version(conn: asyncpg.Connection, step: Step) -> tuple[str, ...]:
    """The tenant's version rows, locked until the transaction ends.

    A tenant at base may still have an empty version table (online downgrades keep it); the
    rendered SQL from base creates it, so an empty one is dropped first, in this transaction.
    """
    if step.from_rev is not None:
        return tuple(row[0] for row in await conn.fetch(LOCK_VERSION_ROWS))
    if not await conn.fetchval(HAS_VERSION_TABLE):
        return ()
    await conn.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
    found = tuple(row[0] for row in await conn.fetch("SELECT version_num FROM alembic_version"))
    if not found:
        await conn.execute("DROP TABLE alembic_version")
    return found
