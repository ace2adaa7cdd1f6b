"""The statement cache's own tier under tenants arriving at random: bounded preparing.

A connection prepares a tenant's own statement (one Parse round trip) only while its own tier
has room, so however the tenants arrive it prepares at most `statement_cache_size` own
statements, plus the shared ones. Negative control: a tier that keeps admitting and evicts
(what the first version did) prepares on a large share of executions."""

import random

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from tenancy.connection import StatementCache, TenantConnection
from tenancy.database import create_engine
from tenancy.lifecycle.blueprint import TenantBlueprint
from tenancy.session import tenant_transaction
from tests.request_path.test_mixed_fleet import new_tenants
from tests.support.project import make_settings

PREPARED_AT = 1.0
"""The dialect stores when it prepared a statement beside it; this cache never reads it."""


class OneShapeDriver:
    """What the cache reads of its connection: the transaction's schema and table shape."""

    tenant_schema: str | None = None
    statement_namespace = "one-shape"


def prepares_at_random(capacity: int, tenants: int, statements: int, *, evicting: bool) -> int:
    """The dialect's use of the cache (`in`, then `[]`, or a prepare and `[]=`) for 40,000
    executions of uniformly random (tenant, statement) pairs; how many prepared."""
    driver = OneShapeDriver()
    cache = StatementCache(driver, capacity)  # type: ignore[arg-type]
    if evicting:
        cache._capacity = 10**9  # admission never stops; the own LRU evicts at `capacity`
    chosen = random.Random(1)
    prepared = 0
    for _ in range(40_000):
        driver.tenant_schema = f"tenant_{chosen.randrange(tenants)}"
        operation = f"SELECT {chosen.randrange(statements)}"
        if operation in cache:
            cache[operation]
            continue
        prepared += 1
        cache[operation] = (object(), (), PREPARED_AT)
    return prepared


@pytest.mark.parametrize("tenants", [60, 100, 150, 300, 1000])
def test_random_arrivals_prepare_at_most_the_cache_size(tenants: int) -> None:
    """10 statements per tenant over a cache of 500: 600 to 10,000 pairs, at random."""
    assert prepares_at_random(500, tenants, 10, evicting=False) <= 500 + 10


@pytest.mark.negative_control
def test_negative_control_an_evicting_own_tier_prepares_on_many_executions() -> None:
    assert prepares_at_random(500, 100, 10, evicting=True) > 4_000  # > 10 % of executions


async def test_random_arrivals_on_a_real_connection(
    database: str,
    engine: AsyncEngine,
    blueprint: TenantBlueprint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """8 tenants x 2 statements (16 pairs) over one connection whose cache holds 8 per tier,
    300 transactions at random: at most 8 own statements and the 2 shared ones prepared."""
    tenants = await new_tenants(engine, blueprint, 8, "random")
    queries = [
        text("SELECT id, content FROM todos WHERE id = 1"),
        text("SELECT count(*) FROM todos"),
    ]
    texts = {str(query) for query in queries}
    prepared = 0
    prepare = TenantConnection.prepare

    async def counted(self: TenantConnection, query: str, *args: object, **kwargs: object):
        nonlocal prepared
        prepared += query in texts  # not the dialect's own queries as a connection opens
        return await prepare(self, query, *args, **kwargs)

    monkeypatch.setattr(TenantConnection, "prepare", counted)
    settings = make_settings(database, pool_size=1, max_overflow=0, statement_cache_size=8)
    db = create_engine(settings.database_url or "", settings)
    sessions = async_sessionmaker(db, expire_on_commit=False)
    chosen = random.Random(2)
    try:
        for _ in range(300):
            async with tenant_transaction(sessions, chosen.choice(tenants).schema) as session:
                await session.execute(chosen.choice(queries))
    finally:
        await db.dispose()
    assert 2 < prepared <= 8 + 2
