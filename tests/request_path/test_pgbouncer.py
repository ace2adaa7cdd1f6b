"""The isolation tests again, through PgBouncer in transaction pooling mode (Debian's 1.18: no
protocol-level prepared statements), with the API as the runtime role and TENANTRY_PGBOUNCER on.

Transaction pooling hands each transaction whichever server connection is free, so anything a
client sets for its session leaks to other clients. The negative controls show the harnesses catch
exactly that; Tenantry's transaction-scoped search_path passes.
"""

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.naming import quote_schema
from tenancy.settings import TenancySettings
from tenancy.testing.pgbouncer import Bouncer, installed, running_pgbouncer
from tests.request_path.test_concurrency import isolation_problems, six_tenants
from tests.request_path.test_isolation_model import run_isolation_model
from tests.support.project import RUNTIME_ROLE, make_settings

pytestmark = pytest.mark.skipif(
    not installed() and not os.environ.get("TENANTRY_REQUIRE_PGBOUNCER"),
    reason="pgbouncer is not installed (.ci/run installs it and sets TENANTRY_REQUIRE_PGBOUNCER)",
)

__all__ = ["six_tenants"]  # a fixture, used by name

NEGATIVE_REQUESTS = 120
"""Enough for the negative controls: leaks through transaction pooling are anything but rare."""


@pytest.fixture(scope="module")
def bouncer(runtime_url: str) -> Iterator[Bouncer]:
    with running_pgbouncer(runtime_url, users=[RUNTIME_ROLE], pool_size=2) as bouncer:
        print(f"through {bouncer.version}, pool_mode=transaction")
        yield bouncer


def through(bouncer: Bouncer, database: str, runtime_url: str, **overrides) -> TenancySettings:
    """The API through PgBouncer, LISTEN straight to PostgreSQL, onboarding as the owner."""
    values = {"pgbouncer": True, "pool_size": 2, "max_overflow": 0, **overrides}
    return make_settings(
        bouncer.url, owner_database_url=database, listen_database_url=runtime_url, **values
    )


async def search_path_set_before_the_transaction(request: Request) -> AsyncIterator[AsyncSession]:
    """A session-level SET in a statement of its own, then the request's transaction: one server
    connection when direct, but behind transaction pooling the two may run on different ones."""
    runtime = request.state.runtime
    async with runtime.engine.connect() as conn:
        await conn.execute(text(f"SET search_path TO {quote_schema(request.state.tenant.schema)}"))
        await conn.commit()
        async with AsyncSession(bind=conn, expire_on_commit=False) as session:
            yield session
            await session.commit()


async def test_300_concurrent_requests_through_pgbouncer_stay_isolated(
    database: str, runtime_url: str, bouncer: Bouncer, six_tenants: list[CreatedTenant]
) -> None:
    # pool_timeout: as in test_concurrency, 300 requests queue for 2 connections; on a busy
    # machine (a Citus cluster on 2 shared cores) the queue can outlast the default 10 s.
    settings = through(bouncer, database, runtime_url, pool_timeout=120)
    assert await isolation_problems(settings, six_tenants) == []


@pytest.mark.negative_control
async def test_negative_control_without_the_pgbouncer_setting_prepared_statements_clash(
    database: str, runtime_url: str, bouncer: Bouncer, six_tenants: list[CreatedTenant]
) -> None:
    """Proves the requests really pass through PgBouncer's transaction pooling."""
    settings = through(bouncer, database, runtime_url, pgbouncer=False)
    problems = await isolation_problems(settings, six_tenants, requests=NEGATIVE_REQUESTS)
    assert any("HTTP 500" in p for p in problems), problems


@pytest.mark.negative_control
async def test_negative_control_a_session_level_set_leaves_its_path_behind(
    database: str,
    runtime_url: str,
    bouncer: Bouncer,
    six_tenants: list[CreatedTenant],
    without_session_reset: None,
) -> None:
    settings = through(bouncer, database, runtime_url)
    problems = await isolation_problems(
        settings, six_tenants, naive=True, requests=NEGATIVE_REQUESTS
    )
    print(f"session-level SET through PgBouncer: {len(problems)} problems, e.g. {problems[:2]}")
    assert any("kept search_path" in p for p in problems), problems


@pytest.mark.negative_control
async def test_negative_control_a_set_before_the_transaction_serves_another_tenants_rows(
    database: str,
    runtime_url: str,
    bouncer: Bouncer,
    six_tenants: list[CreatedTenant],
    without_session_reset: None,
) -> None:
    settings = through(bouncer, database, runtime_url)
    problems = await isolation_problems(
        settings,
        six_tenants,
        dependency=search_path_set_before_the_transaction,
        requests=NEGATIVE_REQUESTS,
    )
    leaked = [p for p in problems if " got " in p]
    print(f"SET before the transaction through PgBouncer: {len(leaked)} foreign rows served")
    assert leaked, problems


def test_the_isolation_model_holds_through_pgbouncer(
    database: str, runtime_url: str, bouncer: Bouncer, new_slug: str
) -> None:
    world = run_isolation_model(
        through(bouncer, database, runtime_url), database, new_slug, examples=3, steps=30
    )
    print(f"isolation model through PgBouncer: {world.steps} rounds, {world.requests} requests")
    assert world.problems == []
    assert world.steps >= 3 * 5
