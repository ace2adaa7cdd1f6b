"""Plain Alembic: a fresh database to head, one tenant with -x, autogenerate names no tenant."""

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.lifecycle.onboarding import create_tenant
from tenancy.migrate.tracks import Tracks
from tenancy.naming import quote_schema
from tenancy.testing.replay_builders import replayed
from tests.support.project import run_alembic


async def alembic(env: dict[str, str], *args: str) -> str:
    result = await asyncio.to_thread(run_alembic, *args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def revision_of(engine: AsyncEngine, schema: str) -> str | None:
    async with engine.connect() as conn:
        return await conn.scalar(text(f"SELECT version_num FROM {schema}.alembic_version"))


async def tables_of(engine: AsyncEngine, schema: str) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}
        )
        return {row[0] for row in rows}


async def test_plain_upgrade_head_builds_a_fresh_database(fresh, tracks: Tracks) -> None:
    env, engine = fresh
    await alembic(env, "upgrade", "head")
    assert await revision_of(engine, "tenantry") == tracks.shared_head
    assert await tables_of(engine, "tenantry") == {
        "tenants",
        "api_keys",
        "migrate_runs",
        "alembic_version",
    }
    assert await tables_of(engine, "public") == set()


async def test_x_tenant_moves_only_that_tenant(fresh, tracks: Tracks) -> None:
    env, engine = fresh
    await alembic(env, "upgrade", "head")
    one = await create_tenant(engine, replayed(tracks), "one")
    two = await create_tenant(engine, replayed(tracks), "two")
    full = {"todos", "users", "songs", "alembic_version"}

    moved = await alembic(env, "-x", "tenant=one", "downgrade", "base")
    assert f"tenant one (schema {one.schema})" in moved and "tenant two" not in moved
    assert await tables_of(engine, one.schema) == {"alembic_version"}
    assert await revision_of(engine, quote_schema(one.schema)) is None
    assert await tables_of(engine, two.schema) == full
    assert await revision_of(engine, quote_schema(two.schema)) == tracks.tenant_head

    await alembic(env, "-x", "tenant=one", "upgrade", "head")
    assert await tables_of(engine, one.schema) == full
    await alembic(env, "downgrade", "base")
    assert await tables_of(engine, two.schema) == {"alembic_version"}
    both = await alembic(env, "upgrade", "head")
    assert (
        both.count("Context impl") == 1 and both.count("Will assume") == 1
    )  # once, not per tenant
    current = await alembic(env, "current")  # each revision under its tenant's name
    assert f"tenant one (schema {one.schema})" in current
    assert f"tenant two (schema {two.schema})" in current
    for tenant in (one, two):
        assert await revision_of(engine, quote_schema(tenant.schema)) == tracks.tenant_head


async def test_unknown_tenant_is_an_error(fresh) -> None:
    env, _engine = fresh
    await alembic(env, "upgrade", "head")
    result = await asyncio.to_thread(run_alembic, "-x", "tenant=ghost", "upgrade", "head", env=env)
    assert result.returncode != 0
    assert "unknown tenant(s): ghost" in result.stderr


async def test_models_match_the_migrations_and_autogenerate_leaves_no_trace(fresh) -> None:
    env, engine = fresh
    await alembic(env, "upgrade", "head")
    result = await asyncio.to_thread(run_alembic, "check", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr
    async with engine.connect() as conn:
        leftovers = await conn.scalar(
            text("SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_autogen'")
        )
    assert leftovers == 0


async def test_offline_sql_names_no_schema(fresh) -> None:
    env, _engine = fresh
    sql = await alembic(env, "upgrade", "head", "--sql")
    assert "CREATE TABLE todos" in sql
    assert "tenant_" not in sql
    assert "tenantry." not in sql
