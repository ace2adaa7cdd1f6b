"""Migrations, onboarding and import run as a dedicated owner role that is not a superuser.

`tenantry roles setup` with TENANTRY_BOOTSTRAP_DATABASE_URL (a superuser) creates the owner role
named in TENANTRY_OWNER_DATABASE_URL and hands it the database; from then on every command
connects as the owner, and what they create is the owner's (objects made by a superuser would be
the superuser's). The embedded server does the same by itself, with `tenantry_owner`.
"""

import json
import os
import secrets
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from tenancy.database import (
    EMBEDDED_OWNER_ROLE,
    bootstrap_url,
    create_engine,
    ensure_database,
)
from tenancy.roles import RoleSetupError, setup_owner
from tenancy.settings import TenancySettings, get_settings
from tenancy.state_keys import RUNTIME_KEY
from tenancy.testing.drop import drop_database
from tenancy.testing.throwaway import throwaway_url
from tests.support.lifecycle import cli

OWNERSHIP = text(
    """
    SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls,
      (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()),
      (SELECT array_agg(DISTINCT pg_get_userbyid(n.nspowner)) FROM pg_namespace n
       WHERE n.nspname = 'tenantry' OR n.nspname LIKE 'tenant\\_%'),
      (SELECT array_agg(DISTINCT pg_get_userbyid(c.relowner)) FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'tenantry' OR n.nspname LIKE 'tenant\\_%')
    FROM pg_roles r WHERE r.rolname = :owner"""
)


class Tenantry:
    """The real `tenantry` command, in this process, with an environment of its own."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch

    async def __call__(self, env: dict[str, str], *args: str) -> str:
        with self.monkeypatch.context() as patch:
            for name in [n for n in os.environ if n.startswith("TENANTRY_")]:
                patch.delenv(name)
            for name, value in env.items():
                patch.setenv(name, value)
            get_settings.cache_clear()
            try:
                result = await cli(*args)
            finally:
                get_settings.cache_clear()
        assert result.exit_code == 0, result.output
        return result.stdout


@pytest.fixture
def tenantry(monkeypatch: pytest.MonkeyPatch) -> Tenantry:
    return Tenantry(monkeypatch)


async def ownership(superuser_url: str, owner: str) -> tuple:
    engine = create_engine(superuser_url, TenancySettings(database_url=superuser_url))
    try:
        async with engine.connect() as conn:
            return tuple((await conn.execute(OWNERSHIP, {"owner": owner})).one())
    finally:
        await engine.dispose()


async def every_step(tenantry: Tenantry, env: dict[str, str], tmp_path: Path) -> str:
    """Migrate, onboard, export, import, set up the runtime role: returns the new schema."""
    await tenantry(env, "migrate")
    created = json.loads(await tenantry(env, "tenants", "create", "own-a", "--json"))
    dump = tmp_path / "own-a.dump"
    await tenantry(env, "tenants", "export", "own-a", str(dump))
    await tenantry(env, "tenants", "import", str(dump), "--as", "own-b")
    await tenantry(env, "roles", "setup")
    return created["schema_name"]


async def test_with_a_bootstrap_url_everything_runs_as_a_non_superuser_owner(
    server_url: str, tmp_path: Path, tenantry: Tenantry
) -> None:
    suffix = secrets.token_hex(4)
    superuser = throwaway_url(server_url, "owner")
    owner, api = f"tenantry_test_owner_{suffix}", f"tenantry_test_api_{suffix}"
    await ensure_database(superuser)
    as_role = lambda role: make_url(superuser).set(username=role).render_as_string(False)  # noqa: E731
    env = {
        "TENANTRY_BOOTSTRAP_DATABASE_URL": superuser,
        "TENANTRY_OWNER_DATABASE_URL": as_role(owner),
        "TENANTRY_DATABASE_URL": as_role(api),
    }
    try:
        first = await tenantry(env, "roles", "setup")
        assert f"owner role {owner} owns the database (not a superuser)" in first
        assert "no registry yet" in first
        migrate_env = {k: v for k, v in env.items() if k != "TENANTRY_BOOTSTRAP_DATABASE_URL"}
        await every_step(tenantry, migrate_env, tmp_path)
        await tenantry(env, "roles", "setup")  # again, after the migrations: the registry too
        found = await ownership(superuser, owner)
        assert found == (owner, False, False, False, False, owner, [owner], [owner])
    finally:
        await drop_database(superuser)
        engine = create_engine(server_url, TenancySettings(database_url=server_url))
        try:
            async with engine.begin() as conn:
                group = f"tenantry_runtime_{make_url(superuser).database}"
                for role in (api, group, owner):
                    await conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await engine.dispose()


async def test_the_embedded_server_runs_everything_as_tenantry_owner(
    tmp_path: Path, tenantry: Tenantry
) -> None:
    """No URL at all: the embedded server's superuser only sets up `tenantry_owner` (and the
    runtime roles); migrations, onboarding and import connect as the owner. A throwaway
    database on the project's embedded server (TENANTRY_EMBEDDED_DATABASE)."""
    database = f"tenantry_test_embedded_{secrets.token_hex(4)}"
    env = {"TENANTRY_EMBEDDED_DATABASE": database}
    superuser = await bootstrap_url(TenancySettings(database_url=None, embedded_database=database))
    try:
        await every_step(tenantry, env, tmp_path)
        found = await ownership(superuser, EMBEDDED_OWNER_ROLE)
        owner = EMBEDDED_OWNER_ROLE
        assert found == (owner, False, False, False, False, owner, [owner], [owner])
        assert await api_role(TenancySettings(database_url=None, embedded_database=database)) == (
            "tenantry_api",
            False,
            False,
        )
    finally:
        await drop_database(superuser)


async def api_role(settings: TenancySettings) -> tuple[str, bool, bool]:
    """Who the API's request path connects as (the app's own lifespan, its runtime's engine):
    the role, whether it is a superuser, whether it may CREATE in the database."""
    app = create_app(settings)
    query = text(
        "SELECT current_user, rolsuper, has_database_privilege(current_database(), 'CREATE')"
        " FROM pg_roles WHERE rolname = current_user"
    )
    async with (
        app.router.lifespan_context(app) as state,
        state[RUNTIME_KEY].engine.connect() as conn,
    ):
        row = (await conn.execute(query)).one()
    return row[0], row[1], row[2]


async def test_setup_refuses_an_owner_that_can_become_a_superuser(
    engine: AsyncEngine, database: str
) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("CREATE ROLE tenantry_test_boss NOLOGIN SUPERUSER"))
        await conn.execute(text("CREATE ROLE tenantry_test_owner LOGIN IN ROLE tenantry_test_boss"))
        with pytest.raises(RoleSetupError, match="owner role 'tenantry_test_owner' can become"):
            await setup_owner(conn, "tenantry_test_owner")
        await conn.rollback()
        current = await conn.scalar(text("SELECT current_user"))
        with pytest.raises(RoleSetupError, match="is the bootstrap role itself"):
            await setup_owner(conn, current)
        await conn.rollback()


def test_compose_runs_migrations_as_an_owner_that_is_not_the_postgres_superuser() -> None:
    from tests.deploy.test_compose import load_compose

    compose = load_compose()
    env, migrate = compose["x-tenantry-env"], compose["services"]["migrate"]
    owner = env["TENANTRY_OWNER_DATABASE_URL"]
    assert "${TENANTRY_OWNER_USER:-tenantry_owner}" in owner and "POSTGRES_USER" not in owner
    assert "TENANTRY_BOOTSTRAP_DATABASE_URL" not in env  # the API never gets the superuser
    assert "${POSTGRES_USER:-tenantry}" in migrate["environment"]["TENANTRY_BOOTSTRAP_DATABASE_URL"]
    steps = " ".join(migrate["command"])
    assert steps.index("roles setup") < steps.index("tenantry migrate") < steps.rindex("roles")
    assert "TENANTRY_BOOTSTRAP_DATABASE_URL" not in compose["services"]["api"].get(
        "environment", {}
    )


PRIVILEGED_BY_MEMBERSHIP = [
    "NOLOGIN CREATEROLE",
    "NOLOGIN CREATEDB",
    "NOLOGIN BYPASSRLS",
    "NOLOGIN IN ROLE pg_read_all_data",
    "NOLOGIN IN ROLE pg_write_all_data",
    "NOLOGIN IN ROLE pg_read_server_files",
    "NOLOGIN IN ROLE pg_write_server_files",
    "NOLOGIN IN ROLE pg_execute_server_program",
]
"""operations.md: an owner (or runtime) login that can become, by membership, a role with
CREATEROLE, CREATEDB or BYPASSRLS, or one of these predefined roles, is refused."""


@pytest.mark.parametrize("grant", PRIVILEGED_BY_MEMBERSHIP)
async def test_setup_refuses_an_owner_that_can_become_a_privileged_role(
    engine: AsyncEngine, grant: str
) -> None:
    suffix = secrets.token_hex(3)
    boss, owner = f"tenantry_test_boss_{suffix}", f"tenantry_test_owner_{suffix}"
    async with engine.connect() as conn:
        await conn.execute(text(f"CREATE ROLE {boss} {grant}"))
        await conn.execute(text(f"CREATE ROLE {owner} LOGIN IN ROLE {boss}"))
        with pytest.raises(RoleSetupError, match=f"owner role '{owner}' can become"):
            await setup_owner(conn, owner)
        await conn.rollback()  # neither role existed outside this transaction


async def test_setup_accepts_an_owner_whose_memberships_grant_nothing_privileged(
    engine: AsyncEngine,
) -> None:
    """The control: the same shape with a plain NOLOGIN role is set up."""
    suffix = secrets.token_hex(3)
    plain, owner = f"tenantry_test_plain_{suffix}", f"tenantry_test_owner_{suffix}"
    async with engine.connect() as conn:
        await conn.execute(text(f"CREATE ROLE {plain} NOLOGIN"))
        await conn.execute(text(f"CREATE ROLE {owner} LOGIN IN ROLE {plain}"))
        await setup_owner(conn, owner)
        await conn.rollback()
