"""Creating a tenant is all or nothing: failures at any step, kill -9, races, failing seeds."""

import asyncio
import signal

import asyncpg
import pytest
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service import onboarding
from tenancy.database import asyncpg_dsn
from tenancy.lifecycle import onboarding as onboarding_steps
from tenancy.lifecycle.blueprint import NewTenant, TenantBlueprint
from tenancy.lifecycle.driver import driver_connection
from tenancy.lifecycle.errors import TenantExists
from tenancy.lifecycle.onboarding import ONBOARDING_STEPS, create_tenant
from tenancy.naming import NOTIFY_CHANNEL, quote_schema
from tenancy.registry import tenants
from tenancy.testing.servers import client
from tests.cli.test_cli import TENANTRY, tenantry
from tests.support.lifecycle import cli, footprint, one_error_line, wait_for_blocked
from tests.support.project import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class InjectedFailure(Exception):
    """Raised right after a real onboarding step has done its work."""


def failing_after(index: int) -> tuple:
    step = ONBOARDING_STEPS[index]

    async def run_then_fail(conn: asyncpg.Connection, creation: object) -> None:
        await step(conn, creation)
        raise InjectedFailure(f"after {step.__name__}")

    return (*ONBOARDING_STEPS[:index], run_then_fail, *ONBOARDING_STEPS[index + 1 :])


async def create_directly(engine, blueprint, _api, slug) -> None:
    with pytest.raises(InjectedFailure):
        await create_tenant(engine, blueprint, slug)


async def create_over_http(_engine, _blueprint, api, slug) -> None:
    async with client(api) as http:
        response = await http.post("/admin/tenants", json={"slug": slug}, headers=ADMIN)
    assert response.status_code == 500
    assert response.json()["type"].endswith("/internal-error")


async def create_on_the_command_line(_engine, _blueprint, _api, slug) -> None:
    result = await cli("tenants", "create", slug)
    assert isinstance(result.exception, InjectedFailure) and result.exit_code == 1


@pytest.mark.parametrize("create", [create_directly, create_over_http, create_on_the_command_line])
@pytest.mark.parametrize(
    "index", range(len(ONBOARDING_STEPS)), ids=[step.__name__ for step in ONBOARDING_STEPS]
)
async def test_a_failure_after_any_step_leaves_nothing_and_announces_nothing(
    engine, blueprint, api, new_slug, database, monkeypatch, index, create
) -> None:
    listener = await asyncpg.connect(asyncpg_dsn(database))
    heard: list[str] = []
    announced = asyncio.Event()

    def on_notify(*args: object) -> None:
        heard.append(str(args[-1]))
        if args[-1] == new_slug:
            announced.set()

    await listener.add_listener(NOTIFY_CHANNEL, on_notify)
    before = await footprint(engine)
    monkeypatch.setattr(onboarding_steps, "ONBOARDING_STEPS", failing_after(index))
    try:
        await create(engine, blueprint, api, new_slug)
        assert await footprint(engine) == before
        monkeypatch.undo()
        await create_tenant(engine, blueprint, new_slug)  # the slug is free for a retry
        async with asyncio.timeout(10):
            await announced.wait()
    finally:
        await listener.close()
    assert heard.count(new_slug) == 1, "the failed create must not have announced anything"


async def test_seed_hook_adds_rows_in_the_new_schema_inside_the_transaction(
    engine: AsyncEngine, tracks, new_slug: str
) -> None:
    seen: list[NewTenant] = []

    async def welcome(conn: AsyncConnection, tenant: NewTenant) -> None:
        seen.append(tenant)
        await conn.execute(text("INSERT INTO todos (content) VALUES (:c)"), {"c": "welcome"})
        assert (await conn.scalar(text("SELECT current_schema()"))) == tenant.schema

    blueprint = onboarding.tenant_blueprint(tracks)
    blueprint = TenantBlueprint(blueprint.builder, seed=welcome)
    created = await create_tenant(engine, blueprint, new_slug, "Welcome Co")
    assert seen[0].slug == new_slug and seen[0].display_name == "Welcome Co" and seen[0].id > 0
    async with engine.connect() as conn:
        rows = await conn.scalars(text(f"SELECT content FROM {quote_schema(created.schema)}.todos"))
        assert list(rows) == ["welcome"]


async def test_a_failing_seed_leaves_nothing(engine: AsyncEngine, tracks, new_slug: str) -> None:
    async def broken(conn: AsyncConnection, _tenant: NewTenant) -> None:
        await conn.execute(text("INSERT INTO todos (content) VALUES ('ok')"))
        await conn.execute(text("INSERT INTO no_such_table VALUES (1)"))

    before = await footprint(engine)
    blueprint = TenantBlueprint(onboarding.tenant_blueprint(tracks).builder, seed=broken)
    with pytest.raises(Exception, match="no_such_table"):
        await create_tenant(engine, blueprint, new_slug)
    assert await footprint(engine) == before


async def test_cli_and_admin_create_run_the_services_seed_hook(
    engine: AsyncEngine, api: str, new_slug: str, monkeypatch
) -> None:
    seeded: list[str] = []

    async def record(_conn: AsyncConnection, tenant: NewTenant) -> None:
        seeded.append(tenant.slug)

    monkeypatch.setattr(onboarding, "seed_new_tenant", record)
    assert (await cli("tenants", "create", f"{new_slug}-cli")).exit_code == 0
    async with client(api) as http:
        body = {"slug": f"{new_slug}-http"}
        assert (await http.post("/admin/tenants", json=body, headers=ADMIN)).status_code == 201
    assert seeded == [f"{new_slug}-cli", f"{new_slug}-http"]


async def holding_api_keys_lock(engine: AsyncEngine) -> AsyncConnection:
    """A transaction holding a lock every create needs for its last insert (the first key)."""
    conn = await engine.connect()
    await conn.begin()
    await conn.execute(text("LOCK TABLE tenantry.api_keys IN EXCLUSIVE MODE"))
    return conn


async def test_kill_9_mid_create_leaves_nothing_that_blocks_a_retry(
    engine: AsyncEngine, new_slug: str
) -> None:
    before = await footprint(engine)
    lock = await holding_api_keys_lock(engine)
    process = await asyncio.create_subprocess_exec(
        TENANTRY,
        "tenants",
        "create",
        new_slug,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        (pid,) = await wait_for_blocked(engine, 1)
        async with engine.connect() as conn:
            created_relations = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE pid = :pid AND locktype = 'relation'"
                    " AND mode = 'AccessExclusiveLock'"
                ),
                {"pid": pid},
            )
        assert created_relations >= 3, "the create should be mid-way: its tables exist"
        process.send_signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL
    finally:
        await lock.rollback()
        await lock.close()
    retry = await asyncio.to_thread(tenantry, "tenants", "create", new_slug)
    assert retry.returncode == 0, retry.stderr
    after = await footprint(engine)
    assert after.slugs - before.slugs == {new_slug}
    assert after.schemas - before.schemas == {f"tenant_{new_slug.replace('-', '_')}"}


async def test_two_concurrent_creates_of_one_slug_on_the_command_line(
    engine: AsyncEngine, new_slug: str
) -> None:
    lock = await holding_api_keys_lock(engine)
    try:
        runs = [
            asyncio.create_task(asyncio.to_thread(tenantry, "tenants", "create", new_slug))
            for _ in range(2)
        ]
        await wait_for_blocked(engine, 2)  # one at the key insert, one behind its registry row
    finally:
        await lock.rollback()
        await lock.close()
    results = sorted(await asyncio.gather(*runs), key=lambda r: r.returncode)
    assert [r.returncode for r in results] == [0, 1]
    assert results[1].stderr == f"error: tenant {new_slug!r} already exists\n"


async def test_two_concurrent_creates_of_one_slug_over_http(
    engine: AsyncEngine, api: str, new_slug: str
) -> None:
    lock = await holding_api_keys_lock(engine)
    async with client(api) as http:
        try:
            posts = [
                asyncio.create_task(
                    http.post("/admin/tenants", json={"slug": new_slug}, headers=ADMIN)
                )
                for _ in range(2)
            ]
            await wait_for_blocked(engine, 2)
        finally:
            await lock.rollback()
            await lock.close()
        responses = sorted(await asyncio.gather(*posts), key=lambda r: r.status_code)
    assert [r.status_code for r in responses] == [201, 409]
    assert responses[1].headers["content-type"] == "application/problem+json"
    assert responses[1].json()["type"].endswith("/conflict")


async def test_a_duplicate_is_refused_before_any_work(engine, blueprint, tenant) -> None:
    before = await footprint(engine)
    with pytest.raises(TenantExists):
        await create_tenant(engine, blueprint, tenant.slug)
    one_error_line(await cli("tenants", "create", tenant.slug))
    assert await footprint(engine) == before


@pytest.mark.negative_control
async def test_negative_control_a_create_committing_step_by_step_is_caught(
    engine: AsyncEngine, blueprint, new_slug: str, monkeypatch
) -> None:
    """A create that commits each step on its own and then fails leaves a row and a schema."""

    async def step_by_step(engine, onboarding, steps) -> None:
        for step in steps[:2]:  # register, create_schema
            async with engine.begin() as conn:
                await step(await driver_connection(conn), onboarding)
        raise InjectedFailure("after create_schema, committed")

    monkeypatch.setattr(onboarding_steps, "run_steps", step_by_step)
    before = await footprint(engine)
    schema = f"tenant_{new_slug.replace('-', '_')}"
    try:
        with pytest.raises(InjectedFailure):
            await create_tenant(engine, blueprint, new_slug)
        after = await footprint(engine)
        assert (after.slugs - before.slugs, after.schemas - before.schemas) == (
            {new_slug},
            {schema},
        )
    finally:  # the leftovers would trip `migrate` in later tests
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quote_schema(schema)}")
            await conn.execute(delete(tenants).where(tenants.c.slug == new_slug))
