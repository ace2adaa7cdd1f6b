"""`tenantry roles setup` run again, as docs/operations.md says to after each upgrade: an existing
login role keeps its password, and a database set up the old way (the cluster-wide
`tenantry_runtime` group) is brought to the per-database shape. Real `tenantry` processes on
throwaway databases; the roles they make are dropped at the end (roles are cluster-wide).
"""

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable

import asyncpg
import pytest
from sqlalchemy import make_url

from tenancy.database import asyncpg_dsn, create_engine
from tenancy.lifecycle.onboarding import create_tenant
from tenancy.migrate.tracks import Tracks
from tenancy.naming import quote_schema, tenant_schema
from tenancy.roles import LEGACY_GROUP, REGISTRY_GRANTS, runtime_group
from tenancy.settings import TenancySettings
from tenancy.testing.drop import drop_database
from tenancy.testing.replay_builders import replayed
from tenancy.testing.throwaway import create_test_database, throwaway_url
from tests.support.common import run_tenantry
from tests.support.project import run_alembic

INSUFFICIENT_PRIVILEGE = "42501"
ONE_SERVER = pytest.mark.single_server(
    "each test makes a database and roles of its own with `roles setup`; on the cluster the"
    " workers know neither (the suite's own database runs roles setup on every node)"
)


def as_role(url: str, role: str, password: str | None = None) -> str:
    return make_url(url).set(username=role, password=password).render_as_string(False)


async def roles_setup(**urls: str) -> str:
    """The real `tenantry roles setup` with only these TENANTRY_* variables; its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    env.update({f"TENANTRY_{name.upper()}": value for name, value in urls.items()})
    result = await asyncio.to_thread(run_tenantry, "roles", "setup", env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def superuser_run(server_url: str, *statements: str, database: str | None = None) -> None:
    url = make_url(server_url)
    if database is not None:
        url = url.set(database=database)
    conn = await asyncpg.connect(asyncpg_dsn(url.render_as_string(False)))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def drop_roles(server_url: str, *roles: str) -> None:
    await superuser_run(server_url, *(f'DROP ROLE IF EXISTS "{role}"' for role in roles))


async def stored_passwords(server_url: str, *roles: str) -> dict[str, str | None]:
    """What the server checks a login against: pg_authid.rolpassword (superusers only)."""
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        rows = await conn.fetch(
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1::text[])", roles
        )
    finally:
        await conn.close()
    return {row["rolname"]: row["rolpassword"] for row in rows}


def scram_accepts(verifier: str | None, password: str) -> bool:
    """Whether a SCRAM-SHA-256 login with `password` succeeds against the stored verifier
    (RFC 5802/7677, as the server checks it): the server here trusts 127.0.0.1, so a real
    password login cannot tell."""
    assert verifier is not None and verifier.startswith("SCRAM-SHA-256$"), verifier
    iterations_and_salt, keys = verifier.removeprefix("SCRAM-SHA-256$").split("$")
    iterations, salt = iterations_and_salt.split(":")
    stored_key, server_key = (base64.b64decode(key) for key in keys.split(":"))
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    return (
        hashlib.sha256(client_key).digest() == stored_key
        and hmac.digest(salted, b"Server Key", "sha256") == server_key
    )


@ONE_SERVER
async def test_an_existing_login_role_keeps_its_password_when_setup_runs_again(
    server_url: str,
) -> None:
    """With the bootstrap URL (as Compose runs it): the first run creates the owner and the API
    role with the URLs' passwords; a second run whose URLs carry other passwords changes
    neither. Control: ALTER ROLE ... PASSWORD does change what the server stores."""
    suffix = secrets.token_hex(4)
    superuser = throwaway_url(server_url, "passwords")
    owner, api = f"tenantry_test_owner_{suffix}", f"tenantry_test_api_{suffix}"
    first, second = "first-" + secrets.token_hex(8), "second-" + secrets.token_hex(8)
    await create_test_database(superuser)

    def urls(password: str) -> dict[str, str]:
        return {
            "bootstrap_database_url": superuser,
            "owner_database_url": as_role(superuser, owner, password),
            "database_url": as_role(superuser, api, password),
        }

    try:
        assert f"runtime role {api} (created)" in await roles_setup(**urls(first))
        created = await stored_passwords(server_url, owner, api)
        assert all(scram_accepts(created[role], first) for role in (owner, api))

        assert f"runtime role {api} (existing)" in await roles_setup(**urls(second))
        again = await stored_passwords(server_url, owner, api)
        assert again == created
        assert all(scram_accepts(again[role], first) for role in (owner, api))
        assert not any(scram_accepts(again[role], second) for role in (owner, api))

        for role in (owner, api):  # the control: a password that is set shows up
            await superuser_run(server_url, f"ALTER ROLE {role} PASSWORD '{second}'")
        changed = await stored_passwords(server_url, owner, api)
        assert all(changed[role] != created[role] for role in (owner, api))
        assert all(scram_accepts(changed[role], second) for role in (owner, api))
    finally:
        await drop_database(superuser)
        await drop_roles(server_url, api, owner)


def legacy_setup(login: str, database: str) -> list[str]:
    """What `roles setup` did before the group was per database (tenancy/roles.py at 8a1aa91):
    one cluster-wide group, granted the registry columns and every table of each tenant schema
    (its alembic_version too), default privileges for later tables; CONNECT for the login only."""
    group = LEGACY_GROUP
    rows = "SELECT, INSERT, UPDATE, DELETE"
    statements = [
        f"GRANT {group} TO {login}",
        f'REVOKE CONNECT, TEMPORARY ON DATABASE "{database}" FROM PUBLIC',
        f'GRANT CONNECT ON DATABASE "{database}" TO CURRENT_USER',
        f'GRANT CONNECT ON DATABASE "{database}" TO {login}',
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA tenantry TO {group}",
    ]
    for table, columns in REGISTRY_GRANTS.items():
        statements.append(f"GRANT SELECT ({', '.join(columns)}) ON tenantry.{table} TO {group}")
    for slug in SLUGS:
        schema = quote_schema(tenant_schema(slug))
        statements += [
            f"GRANT USAGE ON SCHEMA {schema} TO {group}",
            f"GRANT {rows} ON ALL TABLES IN SCHEMA {schema} TO {group}",
            f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {group}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT {rows} ON TABLES TO {group}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE ON SEQUENCES TO {group}",
        ]
    return statements


SLUGS = ("acme", "beta")

PRIVILEGES = """
WITH acl (kind, object, entry) AS (
    SELECT 'database', datname::text, aclexplode(datacl)
    FROM pg_database WHERE datname = current_database()
  UNION ALL
    SELECT 'schema', nspname::text, aclexplode(nspacl) FROM pg_namespace
    WHERE nspname = 'public' OR nspname = 'tenantry' OR nspname LIKE 'tenant\\_%'
  UNION ALL
    SELECT 'relation', n.nspname || '.' || c.relname, aclexplode(c.relacl)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'tenantry' OR n.nspname LIKE 'tenant\\_%'
  UNION ALL
    SELECT 'column', n.nspname || '.' || c.relname || '.' || a.attname, aclexplode(a.attacl)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'tenantry' OR n.nspname LIKE 'tenant\\_%'
  UNION ALL
    SELECT 'default ' || d.defaclobjtype::text || ' by ' || pg_get_userbyid(d.defaclrole),
           coalesce(n.nspname::text, ''), aclexplode(d.defaclacl)
    FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
)
SELECT kind, object, pg_get_userbyid((entry).grantor) AS grantor,
       CASE (entry).grantee WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid((entry).grantee) END
         AS grantee,
       (entry).privilege_type AS privilege
FROM acl
"""
"""Every privilege granted in this database: on it, its Tenantry schemas, their relations and
columns, and the default privileges."""


async def privileges(url: str) -> set[tuple[str, ...]]:
    """PRIVILEGES, with this database's runtime group named `<runtime group>` (so that two
    databases compare) and its name `<database>`."""
    database = make_url(url).database or ""
    group = runtime_group(database)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch(PRIVILEGES)
    finally:
        await conn.close()
    named = {group: "<runtime group>", database: "<database>"}
    return {tuple(named.get(value, value) for value in row.values()) for row in rows}


def held_by(found: Iterable[tuple[str, ...]], role: str) -> set[tuple[str, ...]]:
    return {entry for entry in found if entry[3] == role}


async def version_update(url: str, login: str) -> str:
    """'ok' or the SQLSTATE of the login rewriting a tenant's revision (rolled back)."""
    conn = await asyncpg.connect(asyncpg_dsn(as_role(url, login)))
    try:
        transaction = conn.transaction()
        await transaction.start()
        try:
            table = f"{quote_schema(tenant_schema(SLUGS[0]))}.alembic_version"
            await conn.execute(f"UPDATE {table} SET version_num = version_num")
            return "ok"
        except asyncpg.PostgresError as exc:
            return exc.sqlstate or "?"
        finally:
            await transaction.rollback()
    finally:
        await conn.close()


async def migrated_with_tenants(url: str, tracks: Tracks) -> None:
    await create_test_database(url)
    migrated = await asyncio.to_thread(
        run_alembic, "upgrade", "head", env={**os.environ, "TENANTRY_DATABASE_URL": url}
    )
    assert migrated.returncode == 0, migrated.stderr
    engine = create_engine(url, TenancySettings(database_url=url))
    try:
        for slug in SLUGS:
            await create_tenant(engine, replayed(tracks), slug)
    finally:
        await engine.dispose()


@ONE_SERVER
async def test_setup_brings_a_database_set_up_with_the_legacy_group_to_the_current_shape(
    server_url: str, tracks: Tracks
) -> None:
    """Two databases with the same tenants: one set up the old way, then by `roles setup`; one
    set up by `roles setup` only. Their privileges end up the same (the legacy group holds
    nothing here any more, the login no longer reaches a tenant's alembic_version), and a
    second run changes nothing. Control: the legacy state itself differs from the current one."""
    login = f"tenantry_test_legacy_{secrets.token_hex(4)}"
    legacy, current = throwaway_url(server_url, "legacy"), throwaway_url(server_url, "current")
    legacy_group_is_ours = False
    try:
        for url in (legacy, current):
            await migrated_with_tenants(url, tracks)
        legacy_group_is_ours = not await stored_passwords(server_url, LEGACY_GROUP)  # absent
        if legacy_group_is_ours:
            await superuser_run(server_url, f"CREATE ROLE {LEGACY_GROUP} NOLOGIN")
        await superuser_run(server_url, f"CREATE ROLE {login} LOGIN")
        database = make_url(legacy).database or ""
        await superuser_run(server_url, *legacy_setup(login, database), database=database)
        legacy_state = await privileges(legacy)
        assert held_by(legacy_state, LEGACY_GROUP) != set()
        assert await version_update(legacy, login) == "ok"  # the legacy shape's flaw

        await roles_setup(database_url=as_role(current, login), owner_database_url=current)
        reference = await privileges(current)
        assert legacy_state != reference  # the control: the comparison tells the two apart

        upgraded_output = await roles_setup(
            database_url=as_role(legacy, login), owner_database_url=legacy
        )
        assert f"granted the registry and {len(SLUGS)} tenant schema(s)" in upgraded_output
        upgraded = await privileges(legacy)
        assert held_by(upgraded, LEGACY_GROUP) == set()
        assert upgraded == reference
        assert await version_update(legacy, login) == INSUFFICIENT_PRIVILEGE

        again = await roles_setup(database_url=as_role(legacy, login), owner_database_url=legacy)
        assert again == upgraded_output
        assert await privileges(legacy) == upgraded
    finally:
        for url in (legacy, current):
            await drop_database(url)
        await drop_roles(server_url, login, *([LEGACY_GROUP] if legacy_group_is_ours else []))


TROJAN = """
CREATE TABLE public.trojan_ran (session_role text, acting_role text, superuser bool);
GRANT INSERT ON public.trojan_ran TO PUBLIC;
CREATE SEQUENCE public.trojan_calls;
GRANT USAGE ON SEQUENCE public.trojan_calls TO PUBLIC;
CREATE FUNCTION public.trojan() RETURNS boolean LANGUAGE sql AS $$
  SELECT pg_catalog.nextval('public.trojan_calls');
  INSERT INTO public.trojan_ran
  SELECT session_user, current_user, rolsuper FROM pg_catalog.pg_roles
  WHERE rolname = session_user RETURNING true $$;
CREATE FUNCTION public.current_schema() RETURNS name LANGUAGE sql AS
  $$ SELECT public.trojan(); SELECT pg_catalog.current_schema() $$;
ALTER DATABASE {database} SET search_path = public, pg_catalog;
CREATE FUNCTION public.format(varchar, text) RETURNS text LANGUAGE sql AS
  $$ SELECT public.trojan(); SELECT pg_catalog.format($1::text, $2) $$;
CREATE FUNCTION public.format(varchar, text, text) RETURNS text LANGUAGE sql AS
  $$ SELECT public.trojan(); SELECT pg_catalog.format($1::text, $2, $3) $$;
CREATE FUNCTION public.format(varchar, text, text, text) RETURNS text LANGUAGE sql AS
  $$ SELECT public.trojan(); SELECT pg_catalog.format($1::text, $2, $3, $4) $$;
ALTER TABLE tenantry.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenantry.tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY trojan ON tenantry.tenants USING (public.trojan());
"""
"""What an owner role (not a superuser) may plant in the database it owns: `format()` overloads
in `public` that a superuser's unqualified `format(varchar, text)` would pick over the catalog's;
a `current_schema()` there that a database-level search_path puts first for every new session
(SQLAlchemy calls it as it first connects; independent reviewer's second pass); a row-security
policy on the registry that runs for whoever reads it as the owner (a superuser under SET ROLE
included, which the function could undo with RESET ROLE). Each counts its calls in a sequence
(which a rollback does not undo) and logs who ran it; a real payload would `ALTER ROLE ...
SUPERUSER` or `COPY ... TO PROGRAM`."""


async def trojan_calls(url: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(url), server_settings={"search_path": "pg_catalog"})
    try:
        return await conn.fetchval(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.trojan_calls"
        )
    finally:
        await conn.close()


async def trojan_runs(url: str) -> list[tuple[str, str, bool]]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch("SELECT * FROM public.trojan_ran")
    finally:
        await conn.close()
    return [tuple(row) for row in rows]


@ONE_SERVER
async def test_setup_as_the_superuser_runs_nothing_the_owner_planted(
    server_url: str, tracks: Tracks
) -> None:
    """The documented upgrade step (`roles setup` with the bootstrap superuser, again) on a
    database whose owner planted functions and a registry policy: setup succeeds and none of
    them ran. Controls: the same calls from a superuser session with the default search_path,
    and a read of the registry under SET ROLE, do run them, as the superuser."""
    suffix = secrets.token_hex(4)
    superuser = throwaway_url(server_url, "hostile_owner")
    owner, api = f"tenantry_test_owner_{suffix}", f"tenantry_test_api_{suffix}"
    urls = {
        "bootstrap_database_url": superuser,
        "owner_database_url": as_role(superuser, owner),
        "database_url": as_role(superuser, api),
    }
    try:
        await migrated_with_tenants(superuser, tracks)
        await roles_setup(**urls)
        conn = await asyncpg.connect(asyncpg_dsn(as_role(superuser, owner)))
        try:
            database = make_url(superuser).database
            await conn.execute(TROJAN.format(database=database))  # as the owner, no superuser
        finally:
            await conn.close()

        output = await roles_setup(**urls)
        assert f"granted the registry and {len(SLUGS)} tenant schema(s)" in output
        assert await trojan_calls(superuser) == 0
        assert await trojan_runs(superuser) == []

        await superuser_run(  # the controls: the plants work, with the superuser's rights
            server_url,
            "SELECT current_schema()",
            "SELECT format(CAST('GRANT %I' AS varchar), CAST('x' AS text))",
            f"SET ROLE {owner}; SELECT count(*) FROM tenantry.tenants; RESET ROLE",
            database=database,
        )
        assert await trojan_calls(superuser) >= 3  # current_schema(), format(), the policy per row
        runs = await trojan_runs(superuser)
        assert any(session == acting != owner and su for session, acting, su in runs), runs
        assert any(acting == owner != session and su for session, acting, su in runs), runs
    finally:
        await drop_database(superuser)
        await drop_roles(server_url, api, owner)


EXTRAS = (
    "GRANT CREATE, TEMPORARY ON DATABASE {database} TO {api}",
    "GRANT CREATE ON SCHEMA {tenant} TO {api}",
    "GRANT INSERT, UPDATE ON tenantry.api_keys TO {api}",
    "GRANT TRIGGER, TRUNCATE ON {tenant}.todos TO {group}",
    "GRANT UPDATE (key_hash) ON tenantry.api_keys TO {group}",
    "GRANT CREATE ON SCHEMA tenantry TO {group}",
    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {tenant}"
    " GRANT TRIGGER ON TABLES TO {group}",
    # not the owner's to revoke, and not in its schemas: setup must not fail on it
    "CREATE TABLE public.made_by_superuser (x int)",
    "GRANT TRIGGER ON public.made_by_superuser TO {group}",
)
"""Rights beyond what `roles setup` grants, given by hand (second independent pass, F7): with
CREATE on a schema or TRIGGER on a table the API could plant code the owner may later run."""
HELD = """SELECT pg_catalog.has_database_privilege('{api}', '{database}', 'CREATE'),
  pg_catalog.has_database_privilege('{api}', '{database}', 'TEMPORARY'),
  pg_catalog.has_schema_privilege('{api}', '{tenant}', 'CREATE'),
  pg_catalog.has_table_privilege('{api}', 'tenantry.api_keys', 'INSERT'),
  pg_catalog.has_table_privilege('{api}', '{tenant}.todos', 'TRIGGER'),
  pg_catalog.has_table_privilege('{api}', '{tenant}.todos', 'TRUNCATE'),
  pg_catalog.has_column_privilege('{api}', 'tenantry.api_keys', 'key_hash', 'UPDATE'),
  pg_catalog.has_schema_privilege('{api}', 'tenantry', 'CREATE'),
  EXISTS (SELECT FROM pg_catalog.pg_default_acl d, pg_catalog.aclexplode(d.defaclacl) a
          WHERE a.grantee = pg_catalog.to_regrole('{group}') AND a.privilege_type = 'TRIGGER')"""
NEEDED = """SELECT pg_catalog.has_table_privilege('{api}', '{tenant}.todos', 'SELECT, INSERT'),
  pg_catalog.has_column_privilege('{api}', 'tenantry.api_keys', 'key_hash', 'SELECT'),
  pg_catalog.has_database_privilege('{api}', '{database}', 'CONNECT')"""


async def superuser_fetch(url: str, query: str) -> tuple[bool, ...]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return tuple(await conn.fetchrow(query))
    finally:
        await conn.close()


@ONE_SERVER
async def test_setup_takes_back_rights_beyond_its_own_and_refuses_an_api_that_can_be_owner(
    server_url: str, tracks: Tracks
) -> None:
    """Rights granted by hand beyond the documented set (CREATE on the database and on schemas,
    writes on the registry, TRIGGER and TRUNCATE on a tenant table) are revoked by the next
    setup, the needed ones stay; an API role that is a member of the owner role is refused with
    one line. Controls: the extra rights are held before the setup; without the membership the
    same setup succeeds."""
    suffix = secrets.token_hex(4)
    superuser = throwaway_url(server_url, "extras")
    owner, api = f"tenantry_test_owner_{suffix}", f"tenantry_test_api_{suffix}"
    database = make_url(superuser).database or ""
    urls = {
        "bootstrap_database_url": superuser,
        "owner_database_url": as_role(superuser, owner),
        "database_url": as_role(superuser, api),
    }
    names = {
        "owner": owner,
        "api": api,
        "database": database,
        "tenant": tenant_schema(SLUGS[0]),
        "group": runtime_group(database),
    }
    try:
        await migrated_with_tenants(superuser, tracks)
        await roles_setup(**urls)
        await superuser_run(superuser, *(grant.format(**names) for grant in EXTRAS))
        assert all(await superuser_fetch(superuser, HELD.format(**names)))  # the control
        planted = f"{names['tenant']}.planted()"
        await superuser_run(
            as_role(superuser, api),
            f"CREATE FUNCTION {planted} RETURNS int LANGUAGE sql AS 'SELECT 1'",
        )  # as the API role, with its CREATE
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
        env.update({f"TENANTRY_{name.upper()}": value for name, value in urls.items()})
        refused = await asyncio.to_thread(run_tenantry, "roles", "setup", env=env)
        assert refused.returncode != 0
        assert refused.stderr.strip().count("\n") == 0, refused.stderr
        assert "owns 1 object(s) in this database" in refused.stderr
        await superuser_run(superuser, f"DROP FUNCTION {planted}")

        await roles_setup(**urls)
        assert not any(await superuser_fetch(superuser, HELD.format(**names)))
        assert all(await superuser_fetch(superuser, NEEDED.format(**names)))

        await superuser_run(superuser, f"GRANT {owner} TO {api}")
        refused = await asyncio.to_thread(run_tenantry, "roles", "setup", env=env)
        assert refused.returncode != 0
        assert refused.stderr.strip().count("\n") == 0, refused.stderr
        assert f"can become the owner role '{owner}'" in refused.stderr
        await superuser_run(superuser, f"REVOKE {owner} FROM {api}")
        await roles_setup(**urls)  # the control: the same setup, without the membership
    finally:
        await drop_database(superuser)
        await drop_roles(server_url, api, owner)
