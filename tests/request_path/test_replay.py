"""The API while a tenant is migrated: requests wait for the migration's lock, and a statement
prepared before a schema change never turns into a 500. A negative control proves the check
can fail."""

import asyncio

import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from service.deps import TenantSession
from tenancy import connection as tenant_connection
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.middleware.replay import ReplayStaleStatements
from tenancy.naming import quote_schema
from tenancy.testing.servers import client
from tests.support.common import running_server
from tests.support.lifecycle import wait_for_blocked
from tests.support.project import make_settings


def app_on_one_connection(database: str, *, replay: bool = True) -> FastAPI:
    """One pooled connection, so the next request reuses the statements the last one prepared."""
    app = create_app(make_settings(database, pool_size=1, max_overflow=0))
    if not replay:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not ReplayStaleStatements]
    return app


@pytest.fixture(params=["own", "shared"])
def statement_tier(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which tier of the statement cache holds the statements that go stale: the tenant's own
    (the list ran twice before the change, so the connection prepared one for the tenant), or
    the shared one (own statements turned off: the statement a tenant's first visit runs)."""
    if request.param == "shared":

        def shared_only(
            cache: tenant_connection.StatementCache, operation: str, *, remember: bool = True
        ):
            namespace = tenant_connection.statement_namespace(cache._driver)
            return cache._shared, (namespace, operation)

        monkeypatch.setattr(tenant_connection.StatementCache, "_decide", shared_only)
    return request.param


async def requests_across_type_changes(
    app: FastAPI, engine: AsyncEngine, tenant: CreatedTenant
) -> list[tuple[int, object]]:
    """A list right after a migration changed todos.content's type (while it waited for that
    migration's lock), then a create that prepares its statements, then another change and a
    create whose body must be replayed."""
    todos = f"{quote_schema(tenant.schema)}.todos"
    answers = []
    async with (
        running_server(app) as base_url,
        client(base_url, tenant.slug, tenant.api_key) as http,
    ):
        assert (await http.post("/todos", json={"content": "before"})).status_code == 201
        for _ in range(2):  # the second run prepares the tenant's own statement
            assert (await http.get("/todos")).status_code == 200

        async with engine.connect() as migration:
            await migration.begin()
            await migration.execute(text(f"ALTER TABLE {todos} ALTER COLUMN content TYPE text"))
            waiting = asyncio.create_task(http.get("/todos"))
            await wait_for_blocked(engine, 1)  # the request, at the lock (not a guess of 0.3 s)
            assert not waiting.done(), "the request did not wait for the migration's lock"
            await migration.commit()
        listed = await waiting
        answers.append((listed.status_code, listed.json()))

        for content, new_type in [("middle", None), ("after", "varchar(2000)")]:
            if new_type:
                async with engine.begin() as migration:
                    await migration.execute(
                        text(f"ALTER TABLE {todos} ALTER COLUMN content TYPE {new_type}")
                    )
            created = await http.post("/todos", json={"content": content})
            answers.append((created.status_code, created.json()))
    return answers


async def test_requests_wait_for_a_migration_and_survive_its_type_change(
    database: str, engine: AsyncEngine, tenant: CreatedTenant, statement_tier: str
) -> None:
    app = app_on_one_connection(database)
    (list_status, listed), *creates = await requests_across_type_changes(app, engine, tenant)
    assert list_status == 200, listed
    assert [todo["content"] for todo in listed["items"]] == ["before"]
    assert [(status, body["content"]) for status, body in creates] == [
        (201, "middle"),
        (201, "after"),
    ]
    async with engine.connect() as conn:
        contents = await conn.scalars(
            text(f"SELECT content FROM {quote_schema(tenant.schema)}.todos ORDER BY id")
        )
        assert list(contents) == ["before", "middle", "after"]  # the replayed create wrote once


@pytest.mark.negative_control
async def test_negative_control_without_the_replay_a_stale_statement_is_a_500(
    database: str, engine: AsyncEngine, tenant: CreatedTenant, statement_tier: str
) -> None:
    app = app_on_one_connection(database, replay=False)
    statuses = [status for status, _ in await requests_across_type_changes(app, engine, tenant)]
    assert statuses == [500, 201, 500]


def conflict_probe(sqlstate: str, failures: int) -> tuple[APIRouter, list[int]]:
    """A tenant route whose transaction PostgreSQL aborts with `sqlstate` (a real error raised by
    the server, in the request's own transaction) on its first `failures` runs; the list counts
    the runs."""
    router, runs = APIRouter(), []
    raise_it = text(f"DO $$ BEGIN RAISE EXCEPTION 'probe' USING ERRCODE = '{sqlstate}'; END $$")

    @router.post("/probe/conflict", status_code=201)
    async def probe(session: TenantSession) -> dict[str, int]:
        runs.append(1)
        await session.execute(text("INSERT INTO todos (content) VALUES ('written once')"))
        if len(runs) <= failures:
            await session.execute(raise_it)
        return {"runs": len(runs)}

    return router, runs


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
async def test_a_deadlock_or_serialization_failure_is_replayed_once(
    database: str, engine: AsyncEngine, tenant: CreatedTenant, sqlstate: str
) -> None:
    """deadlock_detected and serialization_failure roll the request's one transaction back:
    it runs once more and is answered as if nothing happened, its row written once."""
    router, runs = conflict_probe(sqlstate, failures=1)
    app = app_on_one_connection(database)
    app.include_router(router)
    async with (
        running_server(app) as base_url,
        client(base_url, tenant.slug, tenant.api_key) as http,
    ):
        response = await http.post("/probe/conflict")
    assert (response.status_code, response.json(), len(runs)) == (201, {"runs": 2}, 2)
    async with engine.connect() as conn:
        written = await conn.scalar(
            text(
                f"SELECT count(*) FROM {quote_schema(tenant.schema)}.todos"
                " WHERE content = 'written once'"
            )
        )
    assert written == 1


async def test_a_second_conflict_in_a_row_is_a_503_and_without_the_replay_the_first_is(
    database: str, tenant: CreatedTenant
) -> None:
    """Aborted twice: 503 `busy` with Retry-After after two runs, never a 500. The control:
    without the replay layer the first abort is that 503, after one run (so the 201 of the test
    above is the replay's doing)."""
    answers = []
    for replay, failures in ((True, 2), (False, 1)):
        router, runs = conflict_probe("40P01", failures)
        app = app_on_one_connection(database, replay=replay)
        app.include_router(router)
        async with (
            running_server(app) as base_url,
            client(base_url, tenant.slug, tenant.api_key) as http,
        ):
            response = await http.post("/probe/conflict")
        kind = response.json()["type"].rsplit("/", 1)[-1]
        answers.append((response.status_code, kind, response.headers.get("Retry-After"), len(runs)))
    assert answers == [(503, "busy", "1", 2), (503, "busy", "1", 1)]
