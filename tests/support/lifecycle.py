"""Helpers for the lifecycle tests: the CLI in-process, what a create leaves behind, lock waits."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from click.testing import Result
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from service.cli.main import app
from tenancy.citus import LOCK_WAITS
from tenancy.registry import api_keys, tenants
from tenancy.testing.citus import on_citus
from tests.support.common import schema_names


async def cli(*args: str) -> Result:
    """The real `tenantry` command in this process (a worker thread runs its own event loop).

    Much cheaper than a subprocess; the tests that need a real process (kill -9, races) use one.
    """
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


def one_error_line(result: Result) -> str:
    """The CLI's error contract: exit 1, nothing on stdout, one `error: ...` line on stderr."""
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@dataclass(frozen=True)
class Footprint:
    """What a tenant operation can leave in the database: schemas, registry rows, keys."""

    schemas: frozenset[str]
    slugs: frozenset[str]
    keys: int


async def footprint(engine: AsyncEngine) -> Footprint:
    async with engine.connect() as conn:
        slugs = frozenset(await conn.scalars(select(tenants.c.slug)))
        keys = await conn.scalar(select(func.count()).select_from(api_keys))
    return Footprint(frozenset(await schema_names(engine)), slugs, keys or 0)


BLOCKED_ON = text(
    """
    SELECT pid, wait_event FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()
    """
)
CITUS_BLOCKED_ON = text(f"SELECT pid, wait_event FROM ({LOCK_WAITS}) waits")
"""On Citus a wait may be on a worker: its coordinator backend (tenancy.citus.LOCK_WAITS)."""


async def wait_for_blocked(engine: AsyncEngine, count: int, within: float = 60.0) -> list[int]:
    """Backends of this database waiting on a lock, once there are `count` of them."""
    pids: list[int] = []
    try:
        async with asyncio.timeout(within):  # a hang guard
            while len(pids) < count:
                await asyncio.sleep(0.05)
                async with engine.connect() as conn:
                    query = CITUS_BLOCKED_ON if on_citus() else BLOCKED_ON
                    pids = [row.pid for row in await conn.execute(query)]
    except TimeoutError:
        raise AssertionError(f"only {len(pids)} of {count} backends blocked") from None
    return pids


NOTIFY_DEADLINE = 10.0
"""How long a test waits for every server to notice a registry change: a hang guard, not a speed
claim. The tests run with an hour-long registry cache, so only NOTIFY can make the change show;
how fast it shows (milliseconds) is measured, not asserted."""


async def eventually(check: Callable[[], Awaitable[bool]], within: float) -> float:
    """Seconds until check() holds; fails if it does not hold within `within` seconds."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(within):  # a hang guard
            while True:
                if await check():
                    break
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not true within {within}s") from None
    return time.monotonic() - start
