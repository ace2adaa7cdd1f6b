"""The request path's round trips: the search_path rides with BEGIN and stays transaction-scoped.
(Connections replaced after pool_max_uses checkouts: tests/request_path/test_pool.py.)"""

import asyncio
from collections.abc import AsyncIterator

import pytest
from asyncpg.connection import LoggedQuery
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from service.app import create_app
from service.todos import Todo
from tenancy.connection import TenantConnection
from tenancy.database import create_engine
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.naming import tenant_search_path
from tenancy.session import tenant_transaction
from tenancy.testing.servers import client
from tests.request_path.test_concurrency import pooled_search_paths
from tests.support.common import backend_pid, running_server
from tests.support.project import make_settings

CURRENT_SEARCH_PATH = text("SELECT current_setting('search_path')")


@pytest.fixture
async def one_connection(database: str) -> AsyncIterator[AsyncEngine]:
    """An engine whose pool holds exactly one connection, so every checkout reuses it."""
    engine = create_engine(database, make_settings(database, pool_size=1, max_overflow=0))
    yield engine
    await engine.dispose()


def sessions_of(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


async def driver_of(engine: AsyncEngine) -> TenantConnection:
    async with engine.connect() as conn:
        return (await conn.get_raw_connection()).driver_connection


async def search_path_of_next_transaction(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        return await conn.scalar(CURRENT_SEARCH_PATH)


async def test_search_path_rides_in_the_begin_round_trip(
    one_connection: AsyncEngine, tenant: CreatedTenant
) -> None:
    driver = await driver_of(one_connection)
    async with tenant_transaction(sessions_of(one_connection), tenant.schema) as session:
        await session.scalar(CURRENT_SEARCH_PATH)  # the process reads the tenant's table shape
    simple_queries: list[str] = []

    def log_query(logged: LoggedQuery) -> None:
        simple_queries.append(logged.query)

    driver.add_query_logger(log_query)
    try:
        async with tenant_transaction(sessions_of(one_connection), tenant.schema) as session:
            seen = await session.scalar(CURRENT_SEARCH_PATH)
    finally:
        driver.remove_query_logger(log_query)
    assert seen == tenant_search_path(tenant.schema)
    begin = f'BEGIN; RESET ALL; RESET ROLE; SET LOCAL search_path TO "{tenant.schema}", extensions;'
    assert simple_queries[:2] == [begin, "COMMIT;"]


async def test_on_an_engine_of_plain_asyncpg_connections_the_bound_statement_sets_it(
    database: str, tenant: CreatedTenant
) -> None:
    plain = create_async_engine(database, pool_size=1, max_overflow=0)
    try:
        default = await search_path_of_next_transaction(plain)
        async with tenant_transaction(sessions_of(plain), tenant.schema) as session:
            seen = await session.scalar(CURRENT_SEARCH_PATH)
        after = await search_path_of_next_transaction(plain)
    finally:
        await plain.dispose()
    assert (seen, after) == (tenant_search_path(tenant.schema), default)


async def test_the_search_path_ends_with_the_transaction(
    one_connection: AsyncEngine, tenant: CreatedTenant
) -> None:
    default = await search_path_of_next_transaction(one_connection)
    async with tenant_transaction(sessions_of(one_connection), tenant.schema) as session:
        assert await session.scalar(CURRENT_SEARCH_PATH) == tenant_search_path(tenant.schema)
    assert await search_path_of_next_transaction(one_connection) == default


async def test_a_failing_transaction_rolls_back_and_leaves_the_default_search_path(
    one_connection: AsyncEngine, tenant: CreatedTenant
) -> None:
    default = await search_path_of_next_transaction(one_connection)
    sessions = sessions_of(one_connection)
    with pytest.raises(RuntimeError, match="boom"):
        async with tenant_transaction(sessions, tenant.schema) as session:
            session.add(Todo(content="never committed"))
            await session.flush()
            raise RuntimeError("boom")
    async with tenant_transaction(sessions, tenant.schema) as session:
        assert (await session.scalars(select(Todo))).all() == []
    assert await search_path_of_next_transaction(one_connection) == default


async def test_a_transaction_that_ran_no_statement_leaves_the_next_begin_clean(
    one_connection: AsyncEngine, tenant: CreatedTenant
) -> None:
    """The session took its connection (and armed BEGIN) but never sent one."""
    default = await search_path_of_next_transaction(one_connection)
    async with tenant_transaction(sessions_of(one_connection), tenant.schema) as session:
        await session.connection()
    assert await search_path_of_next_transaction(one_connection) == default


@pytest.mark.negative_control
async def test_negative_control_an_armed_connection_back_in_the_pool_is_caught(
    one_connection: AsyncEngine, tenant: CreatedTenant
) -> None:
    default = await search_path_of_next_transaction(one_connection)
    (await driver_of(one_connection)).search_path_on_begin(tenant.schema)
    assert await search_path_of_next_transaction(one_connection) != default


async def test_many_interleaved_tenant_transactions_leave_every_pooled_connection_clean(
    database: str, tenant: CreatedTenant, other_tenant: CreatedTenant
) -> None:
    engine = create_engine(database, make_settings(database, pool_size=2, max_overflow=0))
    sessions = sessions_of(engine)

    async def one(n: int) -> None:
        mine = (tenant, other_tenant)[n % 2]
        async with tenant_transaction(sessions, mine.schema) as session:
            assert await session.scalar(CURRENT_SEARCH_PATH) == tenant_search_path(mine.schema)
            if n % 5 == 0:
                await session.connection()  # and nothing else

    try:
        await asyncio.gather(*(one(n) for n in range(60)))
        paths = await pooled_search_paths(engine, 2)
    finally:
        await engine.dispose()
    assert [current == default for current, default in paths] == [True, True]


class FailingBeginConnection(TenantConnection):
    """BEGIN succeeds, the statement riding with it fails: the state a cancelled SET leaves."""

    def search_path_on_begin(self, schema: str | None, tag: str | None = None) -> None:
        self._begin_suffix = " SELECT 1 / 0;" if schema else ""


async def test_a_connection_whose_begin_failed_is_never_handed_out_again(
    database: str, tenant: CreatedTenant
) -> None:
    failing = create_async_engine(
        database,
        pool_size=1,
        max_overflow=0,
        connect_args={"connection_class": FailingBeginConnection},
    )
    try:
        before = await backend_pid(failing)
        with pytest.raises(DBAPIError, match="division by zero"):
            async with tenant_transaction(sessions_of(failing), tenant.schema) as session:
                await session.scalar(CURRENT_SEARCH_PATH)
        after = await backend_pid(failing)
        default = await search_path_of_next_transaction(failing)
    finally:
        await failing.dispose()
    assert after != before
    assert default != tenant.schema


SESSION_STATE = text(
    "SELECT current_setting('statement_timeout'), current_setting('tenantry.injected', true),"
    " current_user = session_user, current_setting('search_path')"
)

LEAVE_SESSION_STATE = (
    "SET statement_timeout = 1234",
    "SET tenantry.injected = 'yes'",
    "SELECT set_config('search_path', 'pg_catalog', false)",
    "SET ROLE pg_read_all_settings",
)
"""What a handler, or SQL injected into one, could leave on its pooled connection."""


async def session_state_after_an_injection(engine: AsyncEngine, schema: str) -> tuple:
    async with engine.connect() as conn:
        await conn.exec_driver_sql("GRANT pg_read_all_settings TO current_user")
        await conn.commit()
    async with tenant_transaction(sessions_of(engine), schema) as session:
        for statement in LEAVE_SESSION_STATE:
            await session.execute(text(statement))
    async with tenant_transaction(sessions_of(engine), schema) as session:
        return tuple((await session.execute(SESSION_STATE)).one())


async def test_no_session_state_outlives_its_transaction(
    one_connection: AsyncEngine, tenant: CreatedTenant
) -> None:
    before = await backend_pid(one_connection)
    state = await session_state_after_an_injection(one_connection, tenant.schema)
    assert await backend_pid(one_connection) == before  # the same pooled connection
    timeout, injected, own_role, search_path = state
    assert (timeout, own_role, search_path) == ("0", True, tenant_search_path(tenant.schema))
    assert injected in (None, "")  # reset: a placeholder once set reads '' from then on


@pytest.mark.negative_control
async def test_negative_control_without_the_reset_a_set_outlives_its_transaction(
    one_connection: AsyncEngine, tenant: CreatedTenant, without_session_reset: None
) -> None:
    state = await session_state_after_an_injection(one_connection, tenant.schema)
    assert state[:3] == ("1234ms", "yes", False)


async def test_no_connection_free_in_time_is_a_503_busy_problem(
    database: str, tenant: CreatedTenant
) -> None:
    app = create_app(make_settings(database, pool_size=1, max_overflow=0, pool_timeout=0.2))
    async with (
        running_server(app) as base_url,
        client(base_url, tenant.slug, tenant.api_key) as http,
    ):
        assert (await http.get("/todos")).status_code == 200
        async with app.state.runtime.engine.connect():  # the pool's only connection, held
            busy = await http.get("/todos")
    assert busy.status_code == 503
    assert busy.headers["content-type"] == "application/problem+json"
    assert busy.json()["type"].endswith("/busy")
    assert busy.headers["retry-after"] == "1"
