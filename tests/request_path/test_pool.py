"""The pool's connection policy: a connection is replaced after pool_max_uses checkouts, and 0
keeps it; the default pool keeps every connection it opens under steady load."""

import asyncio
import random

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import async_sessionmaker

from tenancy.database import create_engine
from tenancy.session import tenant_transaction
from tenancy.settings import TenancySettings
from tests.support.common import backend_pid
from tests.support.project import make_settings


async def backend_pids(database: str, pool_max_uses: int, checkouts: int) -> list[int]:
    """The backend behind each of `checkouts` checkouts from a pool of one connection."""
    settings = make_settings(database, pool_size=1, max_overflow=0, pool_max_uses=pool_max_uses)
    engine = create_engine(database, settings)
    pids = []
    try:
        for _ in range(checkouts):
            pids.append(await backend_pid(engine))
    finally:
        await engine.dispose()
    return pids


async def test_a_connection_is_replaced_after_pool_max_uses_checkouts(database: str) -> None:
    pids = await backend_pids(database, pool_max_uses=3, checkouts=7)
    assert pids[0] == pids[1] == pids[2]
    assert pids[3] == pids[4] == pids[5] != pids[2]
    assert pids[6] not in pids[:6]


async def test_pool_max_uses_zero_keeps_the_connection(database: str) -> None:
    assert len(set(await backend_pids(database, pool_max_uses=0, checkouts=7))) == 1


async def connections_opened(database: str, workers: int, **pool: int) -> int:
    """Connections the pool opens while `workers` tasks each check one out 20 times, holding it
    0-3 ms and waiting 0-3 ms before the next (a steady load of `workers` concurrent clients,
    each sending its next request once the last is answered)."""
    engine = create_engine(database, make_settings(database, pool_max_uses=0, **pool))
    opened = 0

    @event.listens_for(engine.sync_engine, "connect")
    def count(*_args: object) -> None:
        nonlocal opened
        opened += 1

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(20):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                await asyncio.sleep(rng.random() * 0.003)
            await asyncio.sleep(rng.random() * 0.003)

    try:
        await asyncio.gather(*(worker(seed) for seed in range(workers)))
    finally:
        await engine.dispose()
    return opened


async def test_the_default_pool_opens_each_connection_once_under_steady_load(
    database: str,
) -> None:
    """As many concurrent requests as the default pool holds: every connection is opened once
    and kept (none is closed at check-in to be opened again, cold, a moment later)."""
    defaults = TenancySettings.model_fields
    size = defaults["pool_size"].default + defaults["max_overflow"].default
    assert await connections_opened(database, workers=size) <= size


async def connections_opened_in_rounds(database: str, rounds: int, **pool: int) -> int:
    """Connections the pool opens over `rounds` rounds in which as many tasks as the pool can
    hand out each hold one connection until all of them hold one, then all give theirs back
    before the next round starts: the burst a pool of pool_size + max_overflow serves, made
    deterministic by two barriers (no timing decides what is open when)."""
    engine = create_engine(database, make_settings(database, pool_max_uses=0, **pool))
    workers = pool["pool_size"] + pool["max_overflow"]
    all_out, all_back = asyncio.Barrier(workers), asyncio.Barrier(workers)
    opened = 0

    @event.listens_for(engine.sync_engine, "connect")
    def count(*_args: object) -> None:
        nonlocal opened
        opened += 1

    async def worker() -> None:
        for _ in range(rounds):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                await all_out.wait()
            await all_back.wait()

    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        await engine.dispose()
    return opened


async def test_the_default_pool_keeps_every_connection_of_a_full_burst(database: str) -> None:
    defaults = TenancySettings.model_fields
    size, overflow = defaults["pool_size"].default, defaults["max_overflow"].default
    opened = await connections_opened_in_rounds(
        database, rounds=4, pool_size=size, max_overflow=overflow
    )
    assert opened == size + overflow


async def test_negative_control_overflow_connections_are_opened_again_and_again(
    database: str,
) -> None:
    """The same bursts on the earlier defaults (pool_size 10, max_overflow 5): the 5 overflow
    connections are closed at check-in while the pool holds 10 idle ones, so every round opens
    them again; the test above would catch a default that did this."""
    opened = await connections_opened_in_rounds(database, rounds=4, pool_size=10, max_overflow=5)
    assert opened == 15 + 3 * 5, opened


async def backend_pids_entering(
    database: str, schemas: list[str], max_schemas: int, pgbouncer: bool = False
) -> list[int]:
    """The backend behind each transaction, one per schema in turn, from a pool of one."""
    bouncer = {"pgbouncer": True, "listen_database_url": database} if pgbouncer else {}
    settings = make_settings(
        database, pool_size=1, max_overflow=0, pool_max_schemas=max_schemas, **bouncer
    )
    engine = create_engine(database, settings)
    sessions = async_sessionmaker(engine)
    pids = []
    try:
        for schema in schemas:
            async with tenant_transaction(sessions, schema) as session:
                pids.append(await session.scalar(text("SELECT pg_backend_pid()")))
    finally:
        await engine.dispose()
    return pids


async def test_a_connection_is_replaced_once_it_has_entered_pool_max_schemas_schemas(
    database: str,
) -> None:
    schemas = ["tenant_pool_a", "tenant_pool_b", "tenant_pool_a", "tenant_pool_c"]
    pids = await backend_pids_entering(database, [*schemas, "tenant_pool_d", "tenant_pool_a"], 3)
    assert pids[0] == pids[1] == pids[2] == pids[3]  # a, b, a, c: three schemas
    assert pids[4] == pids[5] != pids[3]  # the next checkout got a fresh connection


async def test_a_connection_that_keeps_entering_the_same_schemas_is_kept(database: str) -> None:
    schemas = ["tenant_pool_a", "tenant_pool_b"] * 6
    assert len(set(await backend_pids_entering(database, schemas, 3))) == 1


async def test_pool_max_schemas_zero_never_replaces_a_connection(database: str) -> None:
    schemas = [f"tenant_pool_{name}" for name in "abcdefg"]
    assert len(set(await backend_pids_entering(database, schemas, 0))) == 1


async def test_pool_max_schemas_is_not_applied_behind_pgbouncer(database: str) -> None:
    """With TENANTRY_PGBOUNCER the backends are PgBouncer's: counting the app's connections'
    schemas would bound nothing, so they are kept (here connected straight to PostgreSQL with
    the PgBouncer settings, which is enough to see the pool's policy)."""
    schemas = [f"tenant_pool_{name}" for name in "abcde"]
    assert len(set(await backend_pids_entering(database, schemas, 3, pgbouncer=True))) == 1
