"""The Alembic path (the careful one): tenants whose step needs a live connection, through real
Alembic contexts.

Alembic's `op` and `context` are module-global proxies, so two migration contexts interleaving
in one process (threads, or greenlets via `run_sync`) would overwrite each other. This path
therefore runs one tenant at a time on one connection; it may share the event loop with the
asyncpg lanes of the fast path (fast_path.py) because those never touch `op`, and every group's
SQL is rendered before any lane starts.
"""

import asyncio
from collections.abc import Callable, Iterable

from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.migrate.fast_path import HAS_VERSION_TABLE, LOCK_VERSION_ROWS, Job
from tenancy.migrate.results import (
    Attempt,
    LockPolicy,
    Outcome,
    TenantResult,
    expected_heads,
    is_lock_conflict,
)
from tenancy.migrate.tracks import run_track
from tenancy.search_path import enter_schema

_SET_LOCK_TIMEOUT = text("SELECT set_config('lock_timeout', :timeout, true)")


async def run_in_contexts(
    conn: AsyncConnection,
    script: ScriptDirectory,
    jobs: Iterable[Job],
    policy: LockPolicy,
    report: Callable[[TenantResult], None],
    stop: Callable[[], bool],
) -> None:
    """One tenant after another, each in its own transaction and migration context."""
    for job in jobs:
        if stop():
            return
        report(await migrate_in_context(conn, script, job, policy))


async def migrate_in_context(
    conn: AsyncConnection, script: ScriptDirectory, job: Job, policy: LockPolicy
) -> TenantResult:
    attempt = Attempt(job.tenant, job.step)
    while True:
        attempt.count += 1
        try:
            async with conn.begin():
                found = await conn.run_sync(_migrate, script, job, policy)
            if found != expected_heads(job.step):
                return attempt.moved(found)
            return attempt.ended(Outcome.MIGRATED)
        except DBAPIError as exc:
            if not is_lock_conflict(exc) or attempt.count > policy.retries:
                return attempt.failed(exc.orig or exc)
        except Exception as exc:  # a revision's own Python error fails this tenant only
            return attempt.failed(exc)
        await asyncio.sleep(policy.pause(attempt.count))


def _migrate(
    connection: Connection, script: ScriptDirectory, job: Job, policy: LockPolicy
) -> tuple[str, ...]:
    enter_schema(connection, job.tenant.schema)
    connection.execute(_SET_LOCK_TIMEOUT, {"timeout": policy.setting})
    found: tuple[str, ...] = ()
    if connection.exec_driver_sql(HAS_VERSION_TABLE).scalar():
        found = tuple(connection.exec_driver_sql(LOCK_VERSION_ROWS).scalars())
    if found == expected_heads(job.step):
        step = job.step
        run_track(connection, script, job.tenant.schema, step.destination, downgrade=step.downgrade)
    return found
