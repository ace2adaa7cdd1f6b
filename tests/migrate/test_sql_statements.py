"""Scripts split into statements as psql splits them (sent one by one to a Citus coordinator),
and listings that never make asyncpg look a type up (seconds on a coordinator)."""

import asyncio

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.citus import is_citus, statements_for
from tenancy.database import asyncpg_dsn, create_engine
from tenancy.lifecycle.blueprint import TenantBlueprint
from tenancy.lifecycle.inventory import tenant_inventory
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.migrate.render import render_sql
from tenancy.migrate.tracks import Tracks
from tenancy.settings import TenancySettings
from tenancy.sql_statements import split_statements
from tenancy.testing.citus import on_citus

SPLITS = {
    "alembic offline output": (
        "-- Running upgrade a -> b\n\nALTER TABLE todos DROP COLUMN priority;\n\n"
        "UPDATE alembic_version SET version_num='b' WHERE version_num = 'a';\n\n",
        [
            "-- Running upgrade a -> b\n\nALTER TABLE todos DROP COLUMN priority",
            "UPDATE alembic_version SET version_num='b' WHERE version_num = 'a'",
        ],
    ),
    "dollar-quoted body": (
        "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql; SELECT 1",
        [
            "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql",
            "SELECT 1",
        ],
    ),
    "tagged dollar quote": ("SELECT $t$ a;$$; $t$; SELECT 2", ["SELECT $t$ a;$$; $t$", "SELECT 2"]),
    "strings and identifiers": (
        """SELECT 'a;b', E'x\\';y', "q;""r"; SELECT 2""",
        ["""SELECT 'a;b', E'x\\';y', "q;""r\"""", "SELECT 2"],
    ),
    "comments": (
        "/* c; /* nested; */ */ SELECT $1; -- x;\nSELECT a$b FROM t",
        ["/* c; /* nested; */ */ SELECT $1", "-- x;\nSELECT a$b FROM t"],
    ),
    "parentheses": (
        "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); SELECT 1); SELECT 2",
        [
            "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); SELECT 1)",
            "SELECT 2",
        ],
    ),
    "BEGIN ATOMIC body": (
        "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1"
        " END; SELECT 2; END; SELECT 3",
        [
            "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1"
            " END; SELECT 2; END",
            "SELECT 3",
        ],
    ),
    "transaction BEGIN is a statement": ("BEGIN; SELECT 1; END;", ["BEGIN", "SELECT 1", "END"]),
    "only comments": ("-- only\n/* comments */\n", []),
}


@pytest.mark.parametrize("script, expected", SPLITS.values(), ids=SPLITS.keys())
def test_scripts_split_as_psql_splits_them(script: str, expected: list[str]) -> None:
    assert list(split_statements(script)) == expected


def test_one_server_gets_the_script_whole_and_citus_its_statements(tracks: Tracks) -> None:
    script = render_sql(tracks.tenant, None, tracks.tenant_head)
    assert statements_for(script, citus=False) == (script,)
    statements = statements_for(script, citus=True)
    assert len(statements) > 3
    assert all(";" not in s.rstrip()[-1:] for s in statements)
    assert " ".join(script.split()).count(";") == len(statements)


async def test_each_statement_of_the_head_script_is_one_command(
    database: str, blueprint: TenantBlueprint
) -> None:
    """The extended protocol (which a Citus worker gets the forwarded DDL over) takes exactly one
    command: every piece prepares, the whole script does not (the failure Citus showed)."""
    script = blueprint.builder.script()  # type: ignore[attr-defined]
    conn = await asyncpg.connect(asyncpg_dsn(database))
    try:
        async with conn.transaction():
            await conn.execute("CREATE SCHEMA split_probe; SET LOCAL search_path TO split_probe")
            for statement in split_statements(script):
                await conn.prepare(statement)
                await conn.execute(statement)
            with pytest.raises(asyncpg.PostgresSyntaxError, match="multiple commands"):
                await conn.prepare(script)
            raise Rollback
    except Rollback:
        pass
    finally:
        await conn.close()


class Rollback(Exception):
    pass


async def test_the_database_under_test_says_whether_it_is_citus(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert await is_citus(raw) == on_citus()


async def test_listing_tenants_makes_asyncpg_look_up_no_type(
    database: str, tenant: CreatedTenant, other_tenant: CreatedTenant
) -> None:
    """On a new connection, as each `tenantry tenants list` has: no introspection query (a
    name[] parameter made one, which takes seconds on a Citus coordinator)."""
    engine = create_engine(database, TenancySettings(database_url=database))
    sent: list[str] = []
    try:
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            raw.add_query_logger(lambda record: sent.append(record.query))
            listed = await tenant_inventory(conn)
            introspection = raw._intro_query  # asyncpg's type lookup
            await asyncio.sleep(0.01)  # asyncpg hands log records to loop.call_soon
    finally:
        await engine.dispose()
    assert {tenant.slug, other_tenant.slug} <= {row.slug for row in listed}
    assert sent, "the logger saw nothing: the check would pass vacuously"
    assert introspection not in sent


@pytest.mark.negative_control
async def test_negative_control_a_name_array_parameter_is_looked_up(database: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database))
    sent: list[str] = []
    try:
        conn.add_query_logger(lambda record: sent.append(record.query))
        await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname = ANY($1)", ["public"])
        await asyncio.sleep(0.01)
        assert conn._intro_query in sent
    finally:
        await conn.close()
