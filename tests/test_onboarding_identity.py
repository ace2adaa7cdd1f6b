"""The fast path builds exactly the schema that running every revision builds.

New tenants get the head schema's DDL rendered from the models plus a stamp, not a replay of the
history. These tests compare the full catalog of a tenant built that way with one built by real
Alembic running every revision, and prove the comparison notices any single difference.
"""

import secrets

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.lifecycle.blueprint import TenantBlueprint
from tenancy.lifecycle.build.replay_alembic import ReplayAlembic
from tenancy.lifecycle.build.replay_script import ReplayScript
from tenancy.lifecycle.catalog import catalog_differences, schema_catalog
from tenancy.migrate.tracks import Tracks
from tenancy.provisioning import CreatedTenant, create_tenant


async def catalogs(engine: AsyncEngine, *tenants: CreatedTenant):
    async with engine.connect() as conn:
        return [await schema_catalog(conn, tenant.schema) for tenant in tenants]


@pytest.fixture
async def replayed(engine: AsyncEngine, tracks: Tracks) -> CreatedTenant:
    """A tenant whose tables come from real Alembic running every revision, one by one."""
    return await create_tenant(
        engine, TenantBlueprint(ReplayAlembic(tracks)), "r-" + secrets.token_hex(5)
    )


async def test_fast_path_schema_is_identical_to_running_every_revision(
    engine: AsyncEngine, tenant: CreatedTenant, replayed: CreatedTenant
) -> None:
    fast, reference = await catalogs(engine, tenant, replayed)
    assert catalog_differences(reference, fast) == []
    assert {row[0] for row in fast["relations"]} >= {"todos", "users", "songs", "alembic_version"}
    assert len(fast["columns"]) > 10 and fast["indexes"] and fast["sequences"]


async def test_prerendered_replay_builds_the_same_schema_too(
    engine: AsyncEngine, tracks: Tracks, replayed: CreatedTenant
) -> None:
    scripted = await create_tenant(
        engine, TenantBlueprint(ReplayScript(tracks)), "s-" + secrets.token_hex(5)
    )
    scripted_catalog, reference = await catalogs(engine, scripted, replayed)
    assert catalog_differences(reference, scripted_catalog) == []


ONE_CHANGE = {
    "column type": ("ALTER TABLE todos ALTER COLUMN content TYPE varchar(1999)", "columns"),
    "nullability": ("ALTER TABLE songs ALTER COLUMN artist DROP NOT NULL", "columns"),
    "default": (
        "ALTER TABLE users ALTER COLUMN created_at SET DEFAULT now() - interval '1s'",
        "columns",
    ),
    "column order": (
        "ALTER TABLE songs DROP COLUMN name; ALTER TABLE songs ADD COLUMN name varchar(200)"
        " NOT NULL",
        "columns",
    ),
    "extra column": ("ALTER TABLE todos ADD COLUMN note text", "columns"),
    "constraint": ("ALTER TABLE users DROP CONSTRAINT uq_users_email", "constraints"),
    "check": ("ALTER TABLE songs ADD CONSTRAINT ck_name CHECK (name <> '')", "constraints"),
    "index": ("CREATE INDEX ix_todos_created_at ON todos (created_at)", "indexes"),
    "identity": ("ALTER TABLE todos ALTER COLUMN id SET INCREMENT BY 2", "sequences"),
    "identity kind": ("ALTER TABLE songs ALTER COLUMN id SET GENERATED ALWAYS", "columns"),
    "extra table": ("CREATE TABLE extra (id int)", "relations"),
    "view": ("CREATE VIEW live_todos AS SELECT id FROM todos", "views"),
    "function": ("CREATE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1'", "functions"),
    "enum type": ("CREATE TYPE mood AS ENUM ('ok')", "types"),
    "comment": ("COMMENT ON COLUMN todos.content IS 'what to do'", "columns"),
    "version row": ("UPDATE alembic_version SET version_num = 'elsewhere'", "alembic_version"),
}


@pytest.mark.negative_control
@pytest.mark.parametrize("change", ONE_CHANGE.values(), ids=ONE_CHANGE.keys())
async def test_comparison_fails_on_any_single_difference(
    engine: AsyncEngine, tenant: CreatedTenant, replayed: CreatedTenant, change: tuple[str, ...]
) -> None:
    statement, section = change
    async with engine.begin() as conn:
        await conn.execute(
            text("SELECT set_config('search_path', :s, true)"), {"s": replayed.schema}
        )
        for part in statement.split("; "):
            await conn.exec_driver_sql(part)
    fast, altered = await catalogs(engine, tenant, replayed)
    differences = catalog_differences(fast, altered)
    assert differences, statement
    assert any(line.startswith(f"{section}:") for line in differences), differences


async def test_comparison_ignores_the_schema_name_and_object_ids(
    engine: AsyncEngine, tenant: CreatedTenant, other_tenant: CreatedTenant
) -> None:
    """Two fast-path tenants are equal although every oid and the schema names differ."""
    one, two = await catalogs(engine, tenant, other_tenant)
    assert catalog_differences(one, two) == []
    assert any("<schema>.todos" in row[1] for row in one["indexes"])
