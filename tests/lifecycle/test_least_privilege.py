"""No role holds more than it needs: what the runtime role loses, and which logins setup refuses.

- the runtime role cannot write (or read) any tenant's `alembic_version`;
- an archived tenant's schema grants the runtime role nothing, and a restore gives it back;
- the runtime group is this database's own: a second Tenantry database on the same server, in
  one-role mode, grants its tenants to no one (with the old cluster-wide group it did);
- `roles setup` refuses a login role that can become a privileged role by membership.
"""

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.database import asyncpg_dsn
from tenancy.lifecycle.archive import archive_tenant, restore_tenant
from tenancy.lifecycle.onboarding import CreatedTenant, create_tenant
from tenancy.migrate.tracks import Tracks
from tenancy.naming import quote_archive_schema, quote_schema
from tenancy.roles import (
    PRIVILEGED_PREDEFINED_ROLES,
    RoleSetupError,
    current_runtime_group,
    runtime_group,
    setup_roles,
    tenant_grants,
)
from tenancy.testing.replay_builders import replayed
from tests.support.project import RUNTIME_ROLE, run_alembic

INSUFFICIENT_PRIVILEGE = "42501"


@pytest.fixture
async def as_runtime(runtime_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(runtime_url))
    try:
        yield conn
    finally:
        await conn.close()


async def sqlstate(conn: asyncpg.Connection, statement: str) -> str:
    """'ok' or the SQLSTATE the statement fails with; always rolled back."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(statement)
        return "ok"
    except asyncpg.PostgresError as exc:
        return exc.sqlstate or "?"
    finally:
        await transaction.rollback()


def version_statements(schema: str) -> list[str]:
    table = f"{schema}.alembic_version"
    return [
        f"UPDATE {table} SET version_num = 'elsewhere'",
        f"DELETE FROM {table}",
        f"INSERT INTO {table} VALUES ('elsewhere')",
        f"SELECT * FROM {table}",
    ]


async def test_the_runtime_role_cannot_touch_any_tenants_alembic_version(
    as_runtime: asyncpg.Connection, database: str, tenant: CreatedTenant
) -> None:
    statements = version_statements(quote_schema(tenant.schema))
    assert {s: await sqlstate(as_runtime, s) for s in statements} == dict.fromkeys(
        statements, INSUFFICIENT_PRIVILEGE
    )
    owner = await asyncpg.connect(asyncpg_dsn(database))
    try:  # the same statements are valid SQL: the refusal is for lack of privilege
        assert {await sqlstate(owner, s) for s in statements} == {"ok"}
    finally:
        await owner.close()
    assert await sqlstate(as_runtime, f"SELECT * FROM {quote_schema(tenant.schema)}.todos") == "ok"


@pytest.mark.negative_control
async def test_negative_control_the_old_grants_let_the_runtime_role_rewrite_the_revision(
    as_runtime: asyncpg.Connection, engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    """Without the REVOKE in tenant_grants, GRANT ... ON ALL TABLES covers alembic_version."""
    async with engine.connect() as conn, conn.begin():
        group = await current_runtime_group(conn)
        for statement in tenant_grants(tenant.schema, group):
            if not statement.startswith("REVOKE"):
                await conn.exec_driver_sql(statement)
    try:
        update = version_statements(quote_schema(tenant.schema))[0]
        assert await sqlstate(as_runtime, update) == "ok"
    finally:
        async with engine.begin() as conn:
            for statement in tenant_grants(tenant.schema, group):
                await conn.exec_driver_sql(statement)


async def privileges(engine: AsyncEngine, schema: str) -> dict[str, bool]:
    """What this database's runtime group holds on the schema and its tables, and by default."""
    async with engine.connect() as conn:
        group = await current_runtime_group(conn)
        row = (
            await conn.execute(
                text(
                    """
                    SELECT has_schema_privilege(:g, n.oid, 'USAGE') AS usage,
                      EXISTS (SELECT FROM pg_class c, aclexplode(c.relacl) a
                              WHERE c.relnamespace = n.oid AND a.grantee = to_regrole(:g))
                        AS tables,
                      EXISTS (SELECT FROM pg_default_acl d, aclexplode(d.defaclacl) a
                              WHERE d.defaclnamespace = n.oid AND a.grantee = to_regrole(:g))
                        AS defaults
                    FROM pg_namespace n WHERE n.nspname = :schema"""
                ),
                {"g": group, "schema": schema},
            )
        ).one()
    return dict(row._mapping)


async def test_an_archived_tenant_grants_the_runtime_role_nothing_until_restored(
    runtime_url: str,
    as_runtime: asyncpg.Connection,
    engine: AsyncEngine,
    tracks: Tracks,
    tenant: CreatedTenant,
) -> None:
    granted = {"usage": True, "tables": True, "defaults": True}
    assert await privileges(engine, tenant.schema) == granted
    change = await archive_tenant(engine, tenant.slug)
    assert await privileges(engine, change.archived_schema) == dict.fromkeys(granted, False)
    archived_todos = f"SELECT * FROM {quote_archive_schema(change.archived_schema)}.todos"
    assert await sqlstate(as_runtime, archived_todos) == INSUFFICIENT_PRIVILEGE

    await restore_tenant(engine, tracks, tenant.slug)
    assert await privileges(engine, tenant.schema) == granted
    assert await sqlstate(as_runtime, f"SELECT * FROM {quote_schema(tenant.schema)}.todos") == "ok"


async def test_a_second_database_in_one_role_mode_grants_its_tenants_to_no_runtime_role(
    runtime_url: str, fresh: tuple[dict[str, str], AsyncEngine], tracks: Tracks
) -> None:
    """Two Tenantry databases on one server: this one set up with a runtime role, a second in
    one-role mode. The second's tenants must not be readable by this one's API login (with the
    cluster-wide `tenantry_runtime` group of old, onboarding there granted them to it); and a
    role merely named like the second's group (left over, or planted) does not count as set up."""
    env, second = fresh
    migrated = run_alembic("upgrade", "head", env=env)
    assert migrated.returncode == 0, migrated.stderr
    async with second.connect() as conn:
        lookalike = await current_runtime_group(conn)
        await conn.execute(text(f"CREATE ROLE {lookalike} NOLOGIN"))
        await conn.commit()
    try:
        theirs = await create_tenant(second, replayed(tracks), "s-" + secrets.token_hex(5))
        second_db = make_url(env["TENANTRY_DATABASE_URL"]).database
        api = make_url(runtime_url).set(database=second_db).render_as_string(hide_password=False)
        conn = await asyncpg.connect(asyncpg_dsn(api))  # PUBLIC may connect in one-role mode
        try:
            query = f"SELECT * FROM {quote_schema(theirs.schema)}.todos"
            assert await sqlstate(conn, query) == INSUFFICIENT_PRIVILEGE
        finally:
            await conn.close()
        assert await privileges(second, theirs.schema) == dict.fromkeys(
            ("usage", "tables", "defaults"), False
        )
    finally:
        async with second.begin() as conn:
            await conn.execute(text(f"DROP OWNED BY {lookalike}"))
            await conn.execute(text(f"DROP ROLE {lookalike}"))


def test_runtime_group_names_are_per_database_and_fit() -> None:
    assert runtime_group("tenantry") == "tenantry_runtime_tenantry"
    assert runtime_group("a") != runtime_group("b")
    long_one, long_two = "x" * 60 + "1", "x" * 60 + "2"
    assert len(runtime_group(long_one)) <= 63
    assert runtime_group(long_one) != runtime_group(long_two)
    assert runtime_group("My-DB") != runtime_group("my_db")


PRIVILEGED = {
    "superuser": "SUPERUSER",
    "createrole": "CREATEROLE",
    "createdb": "CREATEDB",
    "bypassrls": "BYPASSRLS",
}


@pytest.mark.parametrize(
    "become",
    [*PRIVILEGED.keys(), *PRIVILEGED_PREDEFINED_ROLES, "superuser, two levels up"],
)
async def test_setup_refuses_a_login_that_can_become_a_privileged_role(
    runtime_url: str, engine: AsyncEngine, become: str
) -> None:
    """A plain login role that is a member of a privileged role (here created just for the test,
    in a transaction that is rolled back) is refused, naming the role it can become."""
    sneaky = "tenantry_test_sneaky"
    async with engine.connect() as conn:
        if become in PRIVILEGED_PREDEFINED_ROLES:
            target = become
        else:
            target = "tenantry_test_mighty"
            attribute = PRIVILEGED[become.split(",")[0]]
            await conn.execute(text(f"CREATE ROLE {target} NOLOGIN {attribute}"))
        if become.endswith("two levels up"):
            await conn.execute(text(f"CREATE ROLE tenantry_test_middle NOLOGIN IN ROLE {target}"))
            target = "tenantry_test_middle"
        await conn.execute(text(f"CREATE ROLE {sneaky} LOGIN NOINHERIT IN ROLE {target}"))
        with pytest.raises(RoleSetupError, match=rf"^runtime role '{sneaky}' can become '"):
            await setup_roles(conn, sneaky)
        await conn.rollback()
    async with engine.connect() as conn:  # the control: the same role without the membership
        await conn.execute(text(f"CREATE ROLE {sneaky} LOGIN NOINHERIT"))
        done = await setup_roles(conn, sneaky)
        await conn.rollback()
    assert done.login_role == sneaky and not done.created


async def test_the_api_login_of_the_test_suite_passes_the_same_check(
    runtime_url: str, engine: AsyncEngine
) -> None:
    async with engine.connect() as conn:
        assert (await setup_roles(conn, RUNTIME_ROLE)).group == await current_runtime_group(conn)
        await conn.rollback()
