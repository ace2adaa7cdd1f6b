"""Mixed fleets: tenants on one pooled connection that differ in shape (issue 13, items 1-3).

A statement prepared for one tenant must never serve another whose result types differ: a column
whose type changed on one tenant only (revision skew), a per-tenant enum (its OID differs in
every schema), and either behind PgBouncer. Each case is the traffic that failed before: pooled
connections alternating between tenants. Every answer must be right (never a 500), and a switch
of tenant must cost no rollback. Negative controls run the same traffic with the statement
cache keyed by query text alone, as SQLAlchemy's asyncpg dialect keys it.
"""

import asyncio
import itertools
from collections.abc import Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from service.app import create_app
from tenancy import connection as tenant_connection
from tenancy import database as tenant_database
from tenancy.database import create_engine
from tenancy.lifecycle.blueprint import TenantBlueprint
from tenancy.lifecycle.onboarding import CreatedTenant, create_tenant
from tenancy.naming import quote_schema
from tenancy.session import tenant_transaction
from tenancy.settings import TenancySettings
from tenancy.testing import pgbouncer
from tenancy.testing.servers import client
from tests.support.common import running_server
from tests.support.project import RUNTIME_ROLE, make_settings

ENUM_REVISION = (
    "CREATE TYPE {schema}.todo_state AS ENUM ('open', 'done')",
    "ALTER TABLE {schema}.todos ADD COLUMN state {schema}.todo_state NOT NULL DEFAULT 'open'",
)
"""What a revision adding `todo_state` and `todos.state` (with a server default) runs."""

READ_STATE = text("SELECT id, content, state FROM todos WHERE id = 1")


async def new_tenants(engine: AsyncEngine, blueprint: TenantBlueprint, count: int, prefix: str):
    import secrets

    tenants = []
    for _ in range(count):
        tenant = await create_tenant(engine, blueprint, f"{prefix}-{secrets.token_hex(4)}")
        async with engine.begin() as conn:
            await conn.execute(
                text(f"INSERT INTO {quote_schema(tenant.schema)}.todos (content) VALUES ('one')")
            )
        tenants.append(tenant)
    return tenants


async def apply(engine: AsyncEngine, tenants: Sequence[CreatedTenant], statements) -> None:
    async with engine.begin() as conn:
        for tenant in tenants:
            for statement in statements:
                await conn.execute(text(statement.format(schema=quote_schema(tenant.schema))))


async def rollbacks(engine: AsyncEngine) -> int:
    """The database's rolled-back transactions so far (this one commits)."""
    async with engine.begin() as conn:
        return await conn.scalar(
            text("SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()")
        )


async def alternate_sql(
    settings: TenancySettings,
    tenants: Sequence[CreatedTenant],
    query,
    *,
    clients: int = 2,
    per_client: int = 200,
) -> list[str]:
    """`clients` tasks on a pool of two, each running `query` per_client times, alternating the
    tenants; returns 'ok' or the error's class name per run. Two clients, one per connection:
    with more, the waiters for a connection timed out on a Citus coordinator at the end of the
    whole suite (TimeoutError, CI twice), which says nothing of statement sharing."""
    engine = create_engine(settings.database_url or "", settings)
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def one_client(offset: int) -> list[str]:
        outcomes = []
        order = itertools.islice(itertools.cycle(tenants), offset, offset + per_client)
        for tenant in order:
            try:
                async with tenant_transaction(sessions, tenant.schema) as session:
                    row = (await session.execute(query)).one()
                    assert row.id == 1
                outcomes.append("ok")
            except Exception as exc:  # the outcome under test
                outcomes.append(type(exc).__name__)
        return outcomes

    try:
        results = await asyncio.gather(*(one_client(i) for i in range(clients)))
    finally:
        await engine.dispose()
    return [outcome for result in results for outcome in result]


def pool_of_two(database: str, **overrides: object) -> TenancySettings:
    """A pool of two connections; a long wait for one, as test_concurrency's: what is under test
    is statement sharing, not the pool's wait."""
    return make_settings(
        database, **{"pool_size": 2, "max_overflow": 0, "pool_timeout": 120, **overrides}
    )


@pytest.fixture
def text_keyed_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The statement cache as SQLAlchemy's dialect keys it: by query text alone (one tier)."""

    def by_text(cache: tenant_connection.StatementCache, operation: str, *, remember: bool = True):
        return cache._shared, operation

    monkeypatch.setattr(tenant_connection.StatementCache, "_decide", by_text)


async def get_todo_alternating(
    app, tenants: Sequence[CreatedTenant], *, clients: int, per_client: int
) -> list[int]:
    async with running_server(app) as base_url:

        async def one_client(offset: int) -> list[int]:
            https = [client(base_url, t.slug, t.api_key) for t in tenants]
            statuses = []
            try:
                for i in range(offset, offset + per_client):
                    statuses.append((await https[i % len(https)].get("/todos/1")).status_code)
            finally:
                for http in https:
                    await http.aclose()
            return statuses

        results = await asyncio.gather(*(one_client(i) for i in range(clients)))
    return [status for result in results for status in result]


# 1. Revision skew: todos.content widened on one tenant only.

WIDEN = ("ALTER TABLE {schema}.todos ALTER COLUMN content TYPE varchar(4000)",)


async def test_revision_skew_serves_every_request_without_a_rollback_per_switch(
    database: str, engine: AsyncEngine, blueprint: TenantBlueprint
) -> None:
    acme, other = await new_tenants(engine, blueprint, 2, "skew")
    await apply(engine, [acme], WIDEN)
    app = create_app(pool_of_two(database))
    statuses = await get_todo_alternating(app, [acme, other], clients=4, per_client=100)
    assert statuses.count(200) == 400, sorted(set(statuses))

    # not one per switch (19 of 20 before); a background read of the app's may add one or two
    assert await switch_cost(database, engine, acme, other) <= 3


async def switch_cost(
    database: str, engine: AsyncEngine, one: CreatedTenant, other: CreatedTenant
) -> int:
    """Rollbacks of 20 requests alternating two tenants on one connection, less those of 20
    requests to one tenant (the app's own read-only transactions end in ROLLBACK too)."""
    counts = []
    for tenants in ([one], [one, other]):
        app = create_app(pool_of_two(database, pool_size=1))
        before = await rollbacks(engine)
        statuses = await get_todo_alternating(app, tenants, clients=1, per_client=20)
        assert statuses == [200] * 20
        counts.append(await rollbacks(engine) - before)
    return counts[1] - counts[0]


@pytest.mark.negative_control
async def test_negative_control_revision_skew_with_a_text_keyed_cache_rolls_back_per_switch(
    database: str, engine: AsyncEngine, blueprint: TenantBlueprint, text_keyed_cache: None
) -> None:
    acme, other = await new_tenants(engine, blueprint, 2, "skewnc")
    await apply(engine, [acme], WIDEN)
    # the replay hides it from the client, at the cost of a failed transaction per switch
    assert await switch_cost(database, engine, acme, other) >= 10


# 2. A per-tenant enum, every tenant at the same revision.


async def test_per_tenant_enums_never_share_a_statement(
    database: str, engine: AsyncEngine, blueprint: TenantBlueprint
) -> None:
    tenants = await new_tenants(engine, blueprint, 3, "enum")
    await apply(engine, tenants, ENUM_REVISION)
    counts = []
    for fleet in ([tenants[0]], tenants):  # one tenant: the rollbacks that are not switches
        before = await rollbacks(engine)
        outcomes = await alternate_sql(pool_of_two(database), fleet, READ_STATE)
        assert outcomes == ["ok"] * 400, sorted(set(outcomes))
        counts.append(await rollbacks(engine) - before)
    # ~400 switches of tenant: one rollback per switch would show hundreds. A few are allowed
    # for background transactions of the database's own (a Citus coordinator's maintenance
    # daemon ends some in ROLLBACK: 3 more were seen there in one CI run)
    assert counts[1] - counts[0] <= 5, counts


@pytest.mark.negative_control
async def test_negative_control_per_tenant_enums_fail_with_a_text_keyed_cache(
    database: str, engine: AsyncEngine, blueprint: TenantBlueprint, text_keyed_cache: None
) -> None:
    tenants = await new_tenants(engine, blueprint, 3, "enumnc")
    await apply(engine, tenants, ENUM_REVISION)
    outcomes = await alternate_sql(pool_of_two(database), tenants, READ_STATE)
    assert outcomes.count("ok") < 400


async def prepared_per_round(
    database: str, tenants: Sequence[CreatedTenant], rounds: int, **settings_overrides: object
) -> list[int]:
    """Run one statement for each tenant in turn, `rounds` times over one pooled connection;
    after each round, how many statements of that text the connection's backend holds."""
    settings = make_settings(database, pool_size=1, max_overflow=0, **settings_overrides)
    db = create_engine(settings.database_url or "", settings)
    sessions = async_sessionmaker(db, expire_on_commit=False)
    query = text("SELECT id, content FROM todos WHERE id = 1")
    counts = []
    try:
        for _ in range(rounds):
            for tenant in tenants:
                async with tenant_transaction(sessions, tenant.schema) as session:
                    (await session.execute(query)).one()
            async with db.connect() as conn:
                raw = await conn.get_raw_connection()
                counts.append(
                    await raw.driver_connection.fetchval(
                        "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1",
                        str(query),
                    )
                )
    finally:
        await db.dispose()
    return counts


async def test_same_shape_tenants_share_statements_until_they_come_back(
    database: str, engine: AsyncEngine, blueprint: TenantBlueprint
) -> None:
    """A tenant's first visit to a connection runs the statement its shape shares (no Parse
    round trip for a tenant new to the connection); the second prepares one of its own, which
    later visits run without preparing again (nor PostgreSQL re-planning it for the switch)."""
    tenants = await new_tenants(engine, blueprint, 3, "same")
    assert await prepared_per_round(database, tenants, 4) == [1, 4, 4, 4]


async def test_a_fleet_larger_than_the_cache_keeps_to_shared_statements(
    database: str, engine: AsyncEngine, blueprint: TenantBlueprint
) -> None:
    """Tenants that come back to a connection less often than its cache remembers never get
    statements of their own: one shared statement, no Parse round trip per visit. Control:
    the same tenants with a cache that remembers them all (the test above)."""
    tenants = await new_tenants(engine, blueprint, 6, "many")
    assert await prepared_per_round(database, tenants, 3, statement_cache_size=2) == [1, 1, 1]
    assert await prepared_per_round(database, tenants, 2, statement_cache_size=12) == [1, 7]


# 3. PgBouncer in transaction mode with a per-tenant type.


@pytest.mark.skipif(not pgbouncer.installed(), reason="pgbouncer is not installed")
async def test_pgbouncer_with_per_tenant_enums(
    database: str, engine: AsyncEngine, blueprint: TenantBlueprint, runtime_url: str
) -> None:
    tenants = await new_tenants(engine, blueprint, 3, "bounce")
    await apply(engine, tenants, ENUM_REVISION)
    with pgbouncer.running_pgbouncer(runtime_url, users=[RUNTIME_ROLE], pool_size=2) as bouncer:
        settings = make_settings(
            bouncer.url, pgbouncer=True, listen_database_url=runtime_url, pool_size=6
        )
        outcomes = await alternate_sql(settings, tenants, READ_STATE, clients=6, per_client=60)
    assert outcomes == ["ok"] * 360, sorted(set(outcomes))


@pytest.mark.negative_control
@pytest.mark.skipif(not pgbouncer.installed(), reason="pgbouncer is not installed")
async def test_negative_control_pgbouncer_with_asyncpgs_statement_cache_fails(
    database: str,
    engine: AsyncEngine,
    blueprint: TenantBlueprint,
    runtime_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """asyncpg's own cache (on by default) serves its type introspection by a named statement,
    which PgBouncer's DEALLOCATE ALL removes after the transaction that prepared it."""
    only_sqlalchemys = tenant_database.pgbouncer_connect_args

    def keeping_asyncpgs_cache(settings: TenancySettings) -> dict[str, object]:
        args = only_sqlalchemys(settings)
        args.pop("statement_cache_size", None)
        return args

    monkeypatch.setattr(tenant_database, "pgbouncer_connect_args", keeping_asyncpgs_cache)
    tenants = await new_tenants(engine, blueprint, 3, "bouncenc")
    await apply(engine, tenants, ENUM_REVISION)
    with pgbouncer.running_pgbouncer(runtime_url, users=[RUNTIME_ROLE], pool_size=2) as bouncer:
        settings = make_settings(
            bouncer.url, pgbouncer=True, listen_database_url=runtime_url, pool_size=6
        )
        outcomes = await alternate_sql(settings, tenants, READ_STATE, clients=6, per_client=60)
    assert outcomes.count("ok") < 360
