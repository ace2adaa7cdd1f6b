"""The runtime role the API connects as: rows in tenant schemas, a few registry columns, no DDL.

Every refusal is checked for PostgreSQL's insufficient-privilege error (42501), and the same
statements are run by the owner (then rolled back) to prove they are valid SQL: the runtime role is
refused for lack of privilege, not for a typo.
"""

import os
import subprocess
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.database import asyncpg_dsn
from tenancy.lifecycle.onboarding import CreatedTenant, create_tenant
from tenancy.naming import quote_schema
from tenancy.roles import RoleSetupError, current_runtime_group, runtime_group, setup_roles
from tenancy.testing.replay_builders import replayed
from tenancy.testing.servers import client
from tests.cli.test_cli import TENANTRY
from tests.deploy.test_compose import load_compose
from tests.support.common import row_counts, schema_names
from tests.support.project import RUNTIME_ROLE

INSUFFICIENT_PRIVILEGE = "42501"


def ddl_statements(a: str) -> list[str]:
    """Everything that creates, alters or drops, in a tenant schema, public, the registry, and
    the database itself; `a` is a quoted tenant schema."""
    return [
        f"CREATE TABLE {a}.evil (x int)",
        f"CREATE VIEW {a}.evil AS SELECT 1 AS x",
        f"CREATE SEQUENCE {a}.evil",
        f"CREATE INDEX evil ON {a}.todos (content)",
        f"ALTER TABLE {a}.todos ADD COLUMN evil int",
        f"ALTER TABLE {a}.todos DROP COLUMN content",
        f"COMMENT ON TABLE {a}.todos IS 'evil'",
        f"TRUNCATE {a}.todos",
        f"DROP TABLE {a}.todos",
        f"ALTER SCHEMA {a} RENAME TO evil",
        f"DROP SCHEMA {a} CASCADE",
        "CREATE TABLE public.evil (x int)",
        "CREATE FUNCTION public.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE TABLE tenantry.evil (x int)",
        "ALTER TABLE tenantry.tenants ADD COLUMN evil int",
        "DROP TABLE tenantry.api_keys",
        "CREATE SCHEMA evil",
        "CREATE TEMPORARY TABLE evil (x int)",
        "CREATE ROLE evil",
    ]


REGISTRY_WRITES_AND_HIDDEN_COLUMNS = [
    "SELECT * FROM tenantry.tenants",
    "SELECT display_name FROM tenantry.tenants",
    "SELECT created_at FROM tenantry.api_keys",
    "INSERT INTO tenantry.tenants (slug, schema_name, display_name) VALUES ('x', 'tenant_x', 'x')",
    "UPDATE tenantry.tenants SET status = 'active'",
    "UPDATE tenantry.api_keys SET revoked_at = NULL",
    "DELETE FROM tenantry.api_keys",
]


@pytest.fixture
async def as_runtime(runtime_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(runtime_url))
    try:
        yield conn
    finally:
        await conn.close()


async def seed(engine: AsyncEngine, tenant: CreatedTenant, *contents: str) -> None:
    async with engine.begin() as conn:
        for content in contents:
            await conn.execute(
                text(f"INSERT INTO {quote_schema(tenant.schema)}.todos (content) VALUES (:c)"),
                {"c": content},
            )


async def refusals(conn: asyncpg.Connection, statements: list[str], schema: str) -> dict[str, str]:
    """The SQLSTATE each statement fails with, run under the tenant's search_path, rolled back."""
    codes = {}
    for statement in statements:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("SELECT set_config('search_path', $1, true)", schema)
            await conn.execute(statement)
            codes[statement] = "succeeded"
        except asyncpg.PostgresError as exc:
            codes[statement] = exc.sqlstate
        finally:
            await transaction.rollback()
    return codes


async def test_runtime_role_cannot_create_alter_or_drop_anything(
    runtime_url: str,
    as_runtime: asyncpg.Connection,
    engine: AsyncEngine,
    tenant: CreatedTenant,
) -> None:
    statements = [*ddl_statements(quote_schema(tenant.schema)), *REGISTRY_WRITES_AND_HIDDEN_COLUMNS]
    schemas_before, rows_before = await schema_names(engine), await row_counts(engine)

    codes = await refusals(as_runtime, statements, tenant.schema)

    assert {s: c for s, c in codes.items() if c != INSUFFICIENT_PRIVILEGE} == {}
    assert await schema_names(engine) == schemas_before
    assert await row_counts(engine) == rows_before


RUNTIME_REGISTRY_COLUMNS = {
    "tenants": {"id", "slug", "schema_name", "status", "rate_limit_per_second", "rate_limit_burst"},
    "api_keys": {"key_id", "tenant_id", "key_hash", "revoked_at"},
    "alembic_version": {"version_num"},
    "migrate_runs": {"id", "finished_at", "duration_seconds", "failed", "tenants_failed"},
}
"""What docs/security.md says the runtime role reads of the registry, written out here (not read
from tenancy.roles), so a grant added there without the docs fails this test."""

_REGISTRY_PRIVILEGES = """
SELECT c.relname, a.attname, p.privilege
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) AS p(privilege)
WHERE n.nspname = 'tenantry' AND has_column_privilege(c.oid, a.attnum, p.privilege)
"""


async def test_runtime_role_reads_exactly_the_documented_registry_columns(
    as_runtime: asyncpg.Connection, tenant: CreatedTenant
) -> None:
    rows = await as_runtime.fetch(_REGISTRY_PRIVILEGES)
    assert {row["privilege"] for row in rows} == {"SELECT"}
    granted: dict[str, set[str]] = {}
    for row in rows:
        granted.setdefault(row["relname"], set()).add(row["attname"])
    assert granted == RUNTIME_REGISTRY_COLUMNS
    tables = await as_runtime.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'tenantry' AND c.relkind IN ('r', 'p', 'v')"
        " AND (has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE'))"
    )
    assert tables == []


async def test_the_same_statements_are_valid_sql_for_the_owner(
    database: str, tenant: CreatedTenant
) -> None:
    owner = await asyncpg.connect(asyncpg_dsn(database))
    try:
        statements = [
            *ddl_statements(quote_schema(tenant.schema)),
            "SELECT * FROM tenantry.tenants",
        ]
        codes = await refusals(owner, statements, tenant.schema)
    finally:
        await owner.close()
    assert set(codes.values()) == {"succeeded"}, codes


async def test_runtime_role_reads_and_writes_rows_of_a_tenant_schema(
    as_runtime: asyncpg.Connection, tenant: CreatedTenant
) -> None:
    async with as_runtime.transaction():
        await as_runtime.execute("SELECT set_config('search_path', $1, true)", tenant.schema)
        todo_id = await as_runtime.fetchval(
            "INSERT INTO todos (content) VALUES ('mine') RETURNING id"
        )
        await as_runtime.execute("UPDATE todos SET content = 'changed' WHERE id = $1", todo_id)
        assert await as_runtime.fetchval("SELECT content FROM todos WHERE id = $1", todo_id) == (
            "changed"
        )
        await as_runtime.execute("DELETE FROM todos WHERE id = $1", todo_id)
        assert await as_runtime.fetchval("SELECT count(*) FROM todos") == 0


async def test_unqualified_names_reach_only_the_tenant_on_the_search_path(
    as_runtime: asyncpg.Connection,
    engine: AsyncEngine,
    tenant: CreatedTenant,
    other_tenant: CreatedTenant,
) -> None:
    await seed(engine, tenant, "alpha 1", "alpha 2")
    await seed(engine, other_tenant, "beta 1")
    for who, expected in ((tenant, ["alpha 1", "alpha 2"]), (other_tenant, ["beta 1"])):
        async with as_runtime.transaction():
            await as_runtime.execute("SELECT set_config('search_path', $1, true)", who.schema)
            rows = await as_runtime.fetch("SELECT content FROM todos ORDER BY id")
            assert [r["content"] for r in rows] == expected
            with pytest.raises(asyncpg.UndefinedTableError):
                await as_runtime.fetch("SELECT slug FROM tenants")  # the registry is off the path


async def test_one_runtime_role_serves_every_tenant_so_qualified_names_are_not_refused(
    as_runtime: asyncpg.Connection,
    engine: AsyncEngine,
    tenant: CreatedTenant,
    other_tenant: CreatedTenant,
) -> None:
    """The documented limit of one runtime role: isolation rests on the transaction-scoped
    search_path and on tenant SQL naming no schema, not on per-tenant grants."""
    await seed(engine, other_tenant, "beta 1")
    async with as_runtime.transaction():
        await as_runtime.execute("SELECT set_config('search_path', $1, true)", tenant.schema)
        rows = await as_runtime.fetch(
            f"SELECT content FROM {quote_schema(other_tenant.schema)}.todos"
        )
    assert [r["content"] for r in rows] == ["beta 1"]


async def test_tables_a_later_migration_adds_are_usable_without_a_new_grant(
    as_runtime: asyncpg.Connection, engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    schema = quote_schema(tenant.schema)
    async with engine.begin() as conn:  # as the owner, the way a tenant migration would
        await conn.execute(text(f"CREATE TABLE {schema}.later (id bigserial, note text)"))
        await conn.execute(text("CREATE TABLE tenantry.later_registry (note text)"))
    try:
        async with as_runtime.transaction():
            await as_runtime.execute("SELECT set_config('search_path', $1, true)", tenant.schema)
            await as_runtime.execute("INSERT INTO later (note) VALUES ('ok')")  # sequence too
            assert await as_runtime.fetchval("SELECT note FROM later") == "ok"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await as_runtime.fetch("SELECT note FROM tenantry.later_registry")
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE {schema}.later"))
            await conn.execute(text("DROP TABLE tenantry.later_registry"))


async def test_onboarding_grants_the_new_schema_to_the_runtime_role(
    runtime_url: str, engine: AsyncEngine, tracks, new_slug: str
) -> None:
    created = await create_tenant(engine, replayed(tracks), new_slug)
    async with engine.connect() as conn:
        group = await current_runtime_group(conn)
        granted = await conn.scalar(
            text(
                "SELECT has_schema_privilege(:role, :schema, 'USAGE') "
                "AND has_table_privilege(:role, :table, 'SELECT, INSERT, UPDATE, DELETE') "
                "AND NOT has_schema_privilege(:role, :schema, 'CREATE')"
            ),
            {"role": group, "schema": created.schema, "table": f"{created.schema}.todos"},
        )
    assert granted


async def test_the_api_connects_as_the_runtime_role_and_onboards_as_the_owner(
    runtime_api: str, engine: AsyncEngine, new_slug: str
) -> None:
    from tests.support.project import ADMIN_TOKEN

    async with client(runtime_api) as http:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        created = (await http.post("/admin/tenants", json={"slug": new_slug}, headers=admin)).json()
        assert (await http.get("/readyz")).status_code == 200
    async with client(runtime_api, new_slug, created["api_key"]) as http:
        assert (await http.post("/todos", json={"content": "hello"})).status_code == 201
        assert [t["content"] for t in (await http.get("/todos")).json()["items"]] == ["hello"]
    async with engine.connect() as conn:
        roles = await conn.scalars(
            text(
                "SELECT DISTINCT usename FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        assert RUNTIME_ROLE in set(roles)


async def test_setup_is_idempotent_and_refuses_unsafe_runtime_roles(
    runtime_url: str, engine: AsyncEngine
) -> None:
    async with engine.connect() as conn:
        again = await setup_roles(conn, RUNTIME_ROLE)
        assert not again.created
        assert again.registry_granted
        await conn.rollback()
        for name in ("bad-name", 'x"; DROP SCHEMA tenantry; --', "", "Upper"):
            with pytest.raises(RoleSetupError, match="unsupported role name"):
                await setup_roles(conn, name)
        with pytest.raises(RoleSetupError, match="owner role itself"):
            await setup_roles(conn, await conn.scalar(text("SELECT current_user")))
        await conn.execute(text("CREATE ROLE tenantry_test_mighty LOGIN CREATEDB"))
        with pytest.raises(RoleSetupError, match="superuser"):
            await setup_roles(conn, "tenantry_test_mighty")
        await conn.rollback()  # the role never existed outside this transaction


async def test_a_login_role_set_up_for_another_database_cannot_connect_here(
    runtime_url: str, engine: AsyncEngine
) -> None:
    stranger, elsewhere = "tenantry_test_stranger", runtime_group("tenantry_test_elsewhere")
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE ROLE {elsewhere} NOLOGIN"))
        await conn.execute(text(f"CREATE ROLE {stranger} LOGIN IN ROLE {elsewhere}"))
    try:
        url = make_url(runtime_url).set(username=stranger).render_as_string(hide_password=False)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await asyncpg.connect(asyncpg_dsn(url))
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP ROLE {stranger}"))
            await conn.execute(text(f"DROP ROLE {elsewhere}"))


def roles_setup(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TENANTRY, "roles", "setup"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_roles_setup_command_sets_up_the_runtime_role_as_the_owner(
    database: str, runtime_url: str
) -> None:
    result = roles_setup(TENANTRY_DATABASE_URL=runtime_url, TENANTRY_OWNER_DATABASE_URL=database)
    assert result.returncode == 0, result.stderr
    assert f"runtime role {RUNTIME_ROLE} (existing)" in result.stdout


@pytest.mark.parametrize(
    ("runtime_user", "message"),
    [(None, "is the owner role itself"), ("bad-name", "unsupported role name")],
)
def test_roles_setup_command_refuses_with_one_line(
    database: str, runtime_user: str | None, message: str
) -> None:
    runtime = database
    if runtime_user:
        runtime = make_url(database).set(username=runtime_user).render_as_string(False)
    result = roles_setup(TENANTRY_DATABASE_URL=runtime, TENANTRY_OWNER_DATABASE_URL=database)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_compose_runs_the_api_as_the_runtime_role_with_an_optional_pgbouncer() -> None:
    compose = load_compose()
    env, services = compose["x-tenantry-env"], compose["services"]
    runtime, owner = env["TENANTRY_DATABASE_URL"], env["TENANTRY_OWNER_DATABASE_URL"]
    assert "${TENANTRY_API_USER:-tenantry_api}" in runtime
    assert "${TENANTRY_OWNER_USER:-tenantry_owner}" in owner  # not the superuser (issue 14)
    assert "tenantry roles setup" in " ".join(services["migrate"]["command"])
    bouncer = services["pgbouncer"]
    assert bouncer["profiles"] == ["pgbouncer"]
    assert bouncer["environment"]["POOL_MODE"] == "transaction"
    assert services["api"]["depends_on"]["pgbouncer"]["required"] is False


async def test_dropping_a_throwaway_database_drops_its_runtime_group(server_url: str) -> None:
    """Roles are cluster-wide: a test database's `tenantry_runtime_<db>` group would outlive it,
    one leaked role per run on the developer's server, unless the kit's drop takes it too."""
    from tenancy.database import ensure_database
    from tenancy.testing.drop import drop_database
    from tenancy.testing.throwaway import throwaway_url

    url = throwaway_url(server_url, "rolegc")
    await ensure_database(url)
    group = runtime_group(make_url(url).database or "")
    admin = await asyncpg.connect(asyncpg_dsn(make_url(url).render_as_string(False)))
    try:
        await admin.execute(
            await admin.fetchval("SELECT format('CREATE ROLE %I', $1::text)", group)
        )
    finally:
        await admin.close()
    await drop_database(url)
    check = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        assert await check.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", group) == 0
    finally:
        await check.close()
