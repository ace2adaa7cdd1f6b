"""The fast path builds exactly the schema that running every revision builds.

New tenants get the head schema's DDL rendered from the models plus a stamp, not a replay of the
history. These tests compare the full catalog of a tenant built that way with one built by real
Alembic running every revision, and prove the comparison notices any single difference.
"""

import secrets

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.lifecycle.blueprint import TenantBlueprint
from tenancy.lifecycle.catalog import Catalog, catalog_differences, schema_catalog
from tenancy.lifecycle.onboarding import CreatedTenant, create_tenant
from tenancy.migrate.tracks import Tracks
from tenancy.search_path import ENTER_SCHEMA
from tenancy.testing.replay_builders import ReplayAlembic, ReplayScript


async def catalog_of(engine: AsyncEngine, tenant: CreatedTenant) -> Catalog:
    async with engine.connect() as conn:
        return await schema_catalog(conn, tenant.schema)


@pytest.fixture(scope="module")
async def fast(engine: AsyncEngine, blueprint: TenantBlueprint) -> CreatedTenant:
    """Built the way the CLI and the admin API build tenants."""
    return await create_tenant(engine, blueprint, "f-" + secrets.token_hex(5))


@pytest.fixture(scope="module")
async def replayed(engine: AsyncEngine, tracks: Tracks) -> CreatedTenant:
    """Built by real Alembic running every revision, one by one."""
    return await create_tenant(
        engine, TenantBlueprint(ReplayAlembic(tracks)), "r-" + secrets.token_hex(5)
    )


async def test_fast_path_schema_is_identical_to_running_every_revision(
    engine: AsyncEngine, fast: CreatedTenant, replayed: CreatedTenant
) -> None:
    built, reference = await catalog_of(engine, fast), await catalog_of(engine, replayed)
    assert catalog_differences(reference, built) == []
    assert {row[0] for row in built["relations"]} >= {"todos", "users", "songs", "alembic_version"}
    assert len(built["columns"]) > 10 and built["indexes"] and built["sequences"]


async def test_prerendered_replay_builds_the_same_schema_too(
    engine: AsyncEngine, tracks: Tracks, replayed: CreatedTenant
) -> None:
    scripted = await create_tenant(
        engine, TenantBlueprint(ReplayScript(tracks)), "s-" + secrets.token_hex(5)
    )
    reference = await catalog_of(engine, replayed)
    assert catalog_differences(reference, await catalog_of(engine, scripted)) == []


async def test_comparison_ignores_the_schema_name_and_object_ids(
    engine: AsyncEngine, fast: CreatedTenant, other_tenant: CreatedTenant
) -> None:
    """Two fast-path tenants are equal although every oid and both schema names differ."""
    one, two = await catalog_of(engine, fast), await catalog_of(engine, other_tenant)
    assert catalog_differences(one, two) == []
    assert any("<schema>.todos" in row[1] for row in one["indexes"])


ONE_CHANGE = {
    "column type": ("columns", "ALTER TABLE todos ALTER COLUMN content TYPE varchar(1999)"),
    "nullability": ("columns", "ALTER TABLE songs ALTER COLUMN artist DROP NOT NULL"),
    "default": ("columns", "ALTER TABLE users ALTER created_at SET DEFAULT statement_timestamp()"),
    "column order": (
        "columns",
        "ALTER TABLE songs DROP COLUMN name",
        "ALTER TABLE songs ADD COLUMN name varchar(200) NOT NULL",
    ),
    "extra column": ("columns", "ALTER TABLE todos ADD COLUMN note text"),
    "collation": ("columns", 'ALTER TABLE songs ALTER COLUMN artist TYPE varchar(200) COLLATE "C"'),
    "constraint": ("constraints", "ALTER TABLE users DROP CONSTRAINT uq_users_email"),
    "check": ("constraints", "ALTER TABLE songs ADD CONSTRAINT ck_name CHECK (name <> '')"),
    "index": ("indexes", "CREATE INDEX ix_todos_created_at ON todos (created_at)"),
    "identity": ("sequences", "ALTER TABLE todos ALTER COLUMN id SET INCREMENT BY 2"),
    "identity kind": ("columns", "ALTER TABLE songs ALTER COLUMN id SET GENERATED ALWAYS"),
    "extra table": ("relations", "CREATE TABLE extra (id int)"),
    "view": ("views", "CREATE VIEW live_todos AS SELECT id FROM todos"),
    "function": ("functions", "CREATE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1'"),
    "trigger": (
        "triggers",
        "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'",
        "CREATE TRIGGER touch BEFORE UPDATE ON todos FOR EACH ROW EXECUTE FUNCTION touch()",
    ),
    "enum type": ("types", "CREATE TYPE mood AS ENUM ('ok')"),
    "comment": ("columns", "COMMENT ON COLUMN todos.content IS 'what to do'"),
    "privilege": ("relations", "GRANT SELECT ON todos TO PUBLIC"),
    "version row": ("alembic_version", "UPDATE alembic_version SET version_num = 'elsewhere'"),
}


_ALTER_REFUSED = "Citus refuses this ALTER TABLE on a distributed table (only some are supported)"
CITUS_REFUSES = {
    "identity": _ALTER_REFUSED,
    "identity kind": _ALTER_REFUSED,
    "trigger": "Citus refuses triggers on distributed tables (citus.enable_unsafe_triggers)",
}
"""Changes a Citus cluster refuses outright: there the difference cannot be made to be caught."""


@pytest.mark.negative_control
@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            change,
            id=name,
            marks=[pytest.mark.single_server(CITUS_REFUSES[name])] if name in CITUS_REFUSES else [],
        )
        for name, change in ONE_CHANGE.items()
    ],
)
async def test_comparison_fails_on_any_single_difference(
    engine: AsyncEngine, fast: CreatedTenant, replayed: CreatedTenant, change: tuple[str, ...]
) -> None:
    """Each change is made to the replayed schema inside a transaction that is rolled back."""
    section, *statements = change
    expected = await catalog_of(engine, fast)
    async with engine.connect() as conn, conn.begin() as transaction:
        await conn.execute(ENTER_SCHEMA, {"schema": replayed.schema})
        for statement in statements:
            await conn.exec_driver_sql(statement)
        differences = catalog_differences(expected, await schema_catalog(conn, replayed.schema))
        await transaction.rollback()
    assert any(line.startswith(f"{section}:") for line in differences), differences
    assert catalog_differences(expected, await catalog_of(engine, replayed)) == []
