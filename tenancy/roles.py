"""Two database roles: the owner runs DDL (migrations, onboarding); the API runs as a runtime role
that can only read and write rows in tenant schemas and read the registry columns it needs.

The privileges are held by one NOLOGIN group role per database, `tenantry_runtime_<database>`
(roles are cluster-wide: a group shared by two Tenantry databases on one server would let one
API's login reach the other's tenants); the API's login role is a member. Onboarding grants the
group each new tenant schema (inside the onboarding transaction) where this database was set up
for a runtime role (the group holds CONNECT on it), and default privileges make tables that later
migrations add in that schema usable too. No grant covers a tenant's `alembic_version`, and an
archived tenant's schema loses every grant until it is restored.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import asyncpg

from tenancy.naming import (
    REGISTRY_SCHEMA,
    is_archive_schema,
    is_staging_schema,
    is_tenant_schema,
    quote_schema,
)
from tenancy.search_path import CATALOG_ONLY_PARAMETERS, CATALOG_ONLY_SQL

if TYPE_CHECKING:
    from sqlalchemy import TextClause
    from sqlalchemy.ext.asyncio import AsyncConnection

RUNTIME_GROUP_PREFIX = "tenantry_runtime_"
"""`runtime_group(database)`: holds every privilege of the API there; logins get them by
membership."""

PRIVILEGED_PREDEFINED_ROLES = (
    "pg_read_all_data",
    "pg_write_all_data",
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
)
"""Predefined roles a runtime login must not be able to become (they bypass schema grants or
reach the server's files and programs)."""

REGISTRY_GRANTS = {
    "tenants": (
        "id",
        "slug",
        "schema_name",
        "status",
        "rate_limit_per_second",
        "rate_limit_burst",
    ),
    "api_keys": ("key_id", "tenant_id", "key_hash", "revoked_at"),
    "alembic_version": ("version_num",),
    "migrate_runs": ("id", "finished_at", "duration_seconds", "failed", "tenants_failed"),
}
"""The registry columns the API reads (tenant lookup, key check, rate limits, /readyz,
/metrics); nothing else."""


@lru_cache(maxsize=64)
def _sql(statement: str) -> TextClause:
    """SQLAlchemy's text(), imported on first use: onboarding grants over plain asyncpg
    (`grant_runtime`) and imports this module without SQLAlchemy."""
    from sqlalchemy import text

    return text(statement)


_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

_ONE_SETUP_AT_A_TIME = "SELECT pg_advisory_xact_lock(hashtext('tenantry roles setup'))"
"""Concurrent GRANTs on one object fail ("tuple concurrently updated"): API workers starting
together on the embedded server each run the setup."""
_IS_MEMBER = "SELECT pg_has_role(:role, :group, 'MEMBER')"
_ROLE_EXISTS = "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = :role)"
_PRIVILEGED = """
    SELECT r.rolname FROM pg_roles r
    WHERE pg_has_role(:role, r.oid, 'MEMBER')
      AND (r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR r.rolcreatedb
           OR r.rolname = ANY(:predefined))
    ORDER BY r.rolname <> :role, r.rolname LIMIT 1"""
"""The first role `role` is, or can become by membership (direct or not, inherited or by SET
ROLE), that is privileged: itself first."""
_SET_UP_HERE = """
    SELECT EXISTS (
        SELECT FROM pg_database d, aclexplode(d.datacl) a
        WHERE d.datname = current_database() AND a.grantee = to_regrole($1)
          AND a.privilege_type = 'CONNECT')"""
"""(asyncpg) Whether the group $1 holds CONNECT on this database."""


class RoleSetupError(Exception):
    """The runtime role cannot be set up as asked (a bad name, a superuser, no registry yet)."""


@dataclass(frozen=True, slots=True)
class RoleSetup:
    login_role: str
    group: str
    created: bool
    tenant_schemas: int
    registry_granted: bool


def checked_role(name: str) -> str:
    """Role names come from settings, never from requests; still, only [a-z0-9_], as for schemas."""
    if _ROLE_NAME.fullmatch(name) is None:
        raise RoleSetupError(f"unsupported role name {name[:80]!r}: use a-z, 0-9 and '_'")
    return name


def runtime_group(database: str) -> str:
    """This database's runtime group: `tenantry_runtime_<database>`, at most 63 characters (a
    long or unusual database name is shortened and given a hash of the full name)."""
    plain = re.sub(r"[^a-z0-9_]", "_", database.lower())
    name = RUNTIME_GROUP_PREFIX + plain
    if plain != database or len(name) > 63:
        digest = hashlib.sha256(database.encode()).hexdigest()[:10]
        name = f"{RUNTIME_GROUP_PREFIX}{plain[: 63 - len(RUNTIME_GROUP_PREFIX) - 11]}_{digest}"
    return checked_role(name)


async def current_runtime_group(conn: AsyncConnection) -> str:
    return runtime_group(await conn.scalar(_sql("SELECT current_database()")))


def tenant_grants(schema: str, group: str, *, versioned: bool = True) -> list[str]:
    """Rows in every table and sequence of one tenant schema: those there now and those to come,
    except its `alembic_version` (the runtime role never changes a tenant's revision).
    versioned=False: the schema has no version table (a broken tenant), so nothing to take back.

    Default privileges apply to objects the current (owner) role creates later in that schema,
    so tables that tenant migrations add need no grant of their own.
    """
    quoted, group = quote_schema(schema), checked_role(group)
    rows = "SELECT, INSERT, UPDATE, DELETE"
    version_table = [f"REVOKE ALL ON {quoted}.alembic_version FROM {group}"] if versioned else []
    return [
        f"GRANT USAGE ON SCHEMA {quoted} TO {group}",
        f"GRANT {rows} ON ALL TABLES IN SCHEMA {quoted} TO {group}",
        *version_table,
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {quoted} TO {group}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {quoted} GRANT {rows} ON TABLES TO {group}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {quoted} GRANT USAGE ON SEQUENCES TO {group}",
    ]


def revoke_grants(quoted_schema: str, group: str) -> list[str]:
    """Every privilege `tenant_grants` gave, on a schema already quoted by naming's functions."""
    group = checked_role(group)
    return [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {quoted_schema} FROM {group}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {quoted_schema} FROM {group}",
        f"REVOKE ALL ON SCHEMA {quoted_schema} FROM {group}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {quoted_schema} REVOKE ALL ON TABLES FROM {group}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {quoted_schema} REVOKE ALL ON SEQUENCES FROM {group}",
    ]


def registry_grants(group: str) -> list[str]:
    grants = [f"GRANT USAGE ON SCHEMA {REGISTRY_SCHEMA} TO {group}"]
    for table, columns in REGISTRY_GRANTS.items():
        grants.append(
            f"GRANT SELECT ({', '.join(columns)}) ON {REGISTRY_SCHEMA}.{table} TO {group}"
        )
    return grants


async def set_up_group(conn: asyncpg.Connection) -> str | None:
    """This database's runtime group, if `roles setup` ran here (the group holds CONNECT on
    it); None in one-role mode, or where only another database was set up."""
    group = runtime_group(await conn.fetchval("SELECT current_database()"))
    return group if await conn.fetchval(_SET_UP_HERE, group) else None


async def grant_runtime(conn: asyncpg.Connection, schema: str) -> None:
    """Let the runtime role use one tenant schema, inside the caller's (onboarding, import,
    restore) transaction, on its plain asyncpg connection: the one place for per-schema
    privileges, run once the schema's tables exist, so `GRANT ... ON ALL TABLES IN SCHEMA`
    covers them and `ALTER DEFAULT PRIVILEGES IN SCHEMA` covers tables later migrations add.
    Nothing to do where this database has no runtime role set up."""
    group = await set_up_group(conn)
    if group is not None:
        for statement in tenant_grants(schema, group):
            await conn.execute(statement)


async def revoke_runtime(conn: asyncpg.Connection, quoted_schema: str) -> None:
    """Take every runtime privilege off a schema (an archived tenant's), in the caller's
    transaction on its asyncpg connection; `quoted_schema` comes from naming's quote functions."""
    group = await set_up_group(conn)
    if group is not None:
        for statement in revoke_grants(quoted_schema, group):
            await conn.execute(statement)


async def setup_owner(conn: AsyncConnection, owner_role: str, password: str | None = None) -> bool:
    """The owner role, set up by a superuser (the bootstrap connection) in its transaction.

    The owner (LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS; created if absent, an
    existing one keeps its password) owns this database (so it may CREATE schemas in it and
    revoke CONNECT from PUBLIC) and every Tenantry schema in it (registry, tenants, archives,
    import staging) with their tables, views and sequences: a deployment once migrated by a
    superuser is handed over. RoleSetupError for a role that is, or can become by membership,
    a privileged role. True when the role was created.
    """
    owner = checked_role(owner_role)
    await conn.execute(_sql(CATALOG_ONLY_SQL), CATALOG_ONLY_PARAMETERS)
    await conn.execute(_sql(_ONE_SETUP_AT_A_TIME))
    if owner == await conn.scalar(_sql("SELECT current_user")):
        raise RoleSetupError(
            f"the owner role {owner!r} is the bootstrap role itself: the owner must be a role "
            "of its own, not a superuser (TENANTRY_OWNER_DATABASE_URL)"
        )
    created = await _create_role(
        conn, owner, "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS", password
    )
    await _refuse_privileged(conn, owner, "owner role")
    database = await conn.scalar(_sql("SELECT current_database()"))
    await _exec_formatted(conn, "ALTER DATABASE %I OWNER TO %I", database, owner)
    await _adopt_schemas(conn, owner)
    return created


_TENANTRY_SCHEMAS = "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace ORDER BY nspname"
_FOREIGN_RELATIONS = """
    SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(:schemas) AND c.relowner <> to_regrole(:owner)
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND NOT EXISTS (SELECT FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
    ORDER BY 1, 2"""


async def _adopt_schemas(conn: AsyncConnection, owner: str) -> None:
    """Hand the registry, tenant, archive and staging schemas (and their relations) to owner."""
    schemas = [
        (name, current)
        for name, current in (await conn.execute(_sql(_TENANTRY_SCHEMAS))).all()
        if name == REGISTRY_SCHEMA
        or is_tenant_schema(name)
        or is_archive_schema(name)
        or is_staging_schema(name)
    ]
    for name, current in schemas:
        if current != owner:
            await _exec_formatted(conn, "ALTER SCHEMA %I OWNER TO %I", name, owner)
    names = [name for name, _ in schemas]
    relations = await conn.execute(_sql(_FOREIGN_RELATIONS), {"schemas": names, "owner": owner})
    for schema, relation in relations.all():
        await _exec_formatted(conn, "ALTER TABLE %I.%I OWNER TO %I", schema, relation, owner)


async def setup_roles(
    conn: AsyncConnection,
    login_role: str,
    password: str | None = None,
    *,
    require_registry: bool = True,
    owner: str | None = None,
) -> RoleSetup:
    """Create (if absent) the runtime group and its login role, and grant what the API needs.

    Run after the migrations, in one transaction; idempotent, so it also brings an existing
    deployment's tenant schemas up to date. An existing login role keeps its password.
    Either as the owner itself (which must then be allowed to create roles), or as a superuser
    naming the `owner` (see setup_owner): roles are created as the superuser, and every grant
    is made as the owner (SET LOCAL ROLE), whose default privileges are the ones that count.

    As a superuser it runs nothing the owner controls: names resolve in the catalog only
    (`tenancy.search_path.CATALOG_ONLY_SQL`), and the tenant schemas are read from the catalog,
    not from the registry's rows (a table the owner could turn into a view, or give a
    row-security policy whose function, run by the superuser, could `RESET ROLE` and keep its
    rights).
    """
    login_role = checked_role(login_role)
    await conn.execute(_sql(CATALOG_ONLY_SQL), CATALOG_ONLY_PARAMETERS)
    await conn.execute(_sql(_ONE_SETUP_AT_A_TIME))
    current = await conn.scalar(_sql("SELECT current_user"))
    if login_role in (current, owner):
        raise RoleSetupError(
            f"the runtime role {login_role!r} is the owner role itself: give the API a role "
            "of its own (TENANTRY_DATABASE_URL) and the owner another (TENANTRY_OWNER_DATABASE_URL)"
        )
    has_registry = await conn.scalar(_sql("SELECT to_regclass(:t) IS NOT NULL"), {"t": _TENANTS})
    if require_registry and not has_registry:
        raise RoleSetupError("no registry yet: run `tenantry migrate` first")
    group = await current_runtime_group(conn)
    await _create_role(conn, group, "NOLOGIN")
    created = await _create_role(conn, login_role, "LOGIN", password)
    await _refuse_privileged(conn, login_role)
    if not await conn.scalar(_sql(_IS_MEMBER), {"role": login_role, "group": group}):
        await _exec_formatted(conn, f"GRANT {group} TO %I", login_role)
    owner_role = checked_role(owner) if owner is not None else current
    if await conn.scalar(_sql(_IS_MEMBER), {"role": login_role, "group": owner_role}):
        raise RoleSetupError(
            f"the runtime role {login_role!r} can become the owner role {owner_role!r} (a member"
            " of it): it could then change every schema; revoke that membership"
        )
    if owner is not None:
        await _exec_formatted(conn, "SET LOCAL ROLE %I", owner_role)
    await _take_back_extras(conn, login_role, group)
    await _lock_down_database(conn, login_role, group)
    schemas: list[str] = []
    if has_registry:
        await _run_all(conn, registry_grants(group))
        from tenancy.registry import tenant_schemas

        if owner is None:  # the owner itself: its own registry
            schemas = await _existing(conn, await tenant_schemas(conn))
        else:
            schemas = await _tenant_schemas_in_catalog(conn)
        versioned = await _versioned(conn, schemas)
        for schema in schemas:
            await _run_all(conn, tenant_grants(schema, group, versioned=schema in versioned))
        await _forget_legacy_group(conn, schemas)
    if owner is not None:
        await conn.exec_driver_sql("RESET ROLE")
    return RoleSetup(login_role, group, created, len(schemas), bool(has_registry))


_TENANTS = f"{REGISTRY_SCHEMA}.tenants"
_SCHEMA_NAMES = "SELECT nspname FROM pg_catalog.pg_namespace ORDER BY nspname"


async def _tenant_schemas_in_catalog(conn: AsyncConnection) -> list[str]:
    """Every schema named as a tenant's (tenancy.naming), read from the catalog only: live
    tenants' schemas, and any schema made by hand under such a name (the API reaches a schema
    only through the registry, so a grant there gives it nothing to reach)."""
    return [name for name in await conn.scalars(_sql(_SCHEMA_NAMES)) if is_tenant_schema(name)]


LEGACY_GROUP = "tenantry_runtime"
"""The cluster-wide group of earlier versions, shared by every database on the server."""

_EXISTING = (
    "SELECT nspname FROM pg_namespace WHERE nspname = ANY(CAST(CAST(:schemas AS text[]) AS name[]))"
)
"""Bound as text[] (a type asyncpg knows without asking the server), compared as name[]."""


async def _existing(conn: AsyncConnection, schemas: list[str]) -> list[str]:
    """The schemas that exist, in order: a registered tenant whose schema was dropped by hand has
    nothing to grant (`tenantry migrate` reports it, `tenants purge` settles it)."""
    present = set(await conn.scalars(_sql(_EXISTING), {"schemas": schemas}))
    return [schema for schema in schemas if schema in present]


_VERSIONED = (
    "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relname = 'alembic_version'"
    " AND n.nspname = ANY(CAST(CAST(:schemas AS text[]) AS name[]))"
)


async def _versioned(conn: AsyncConnection, schemas: list[str]) -> set[str]:
    """Those of schemas that have a version table (one that lost it is reported by `migrate`)."""
    return set(await conn.scalars(_sql(_VERSIONED), {"schemas": schemas}))


async def _forget_legacy_group(conn: AsyncConnection, schemas: list[str]) -> None:
    """Take this database's grants off the old cluster-wide group (an upgrade's clean-up)."""
    if not await _role_exists(conn, LEGACY_GROUP):
        return
    await _run_all(conn, [f"REVOKE ALL ON SCHEMA {REGISTRY_SCHEMA} FROM {LEGACY_GROUP}"])
    await _run_all(
        conn, [f"REVOKE ALL ON ALL TABLES IN SCHEMA {REGISTRY_SCHEMA} FROM {LEGACY_GROUP}"]
    )
    for schema in schemas:
        await _run_all(conn, revoke_grants(quote_schema(schema), LEGACY_GROUP))


_HAS_CITUS = "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')"
_GRANT_ON_WORKERS = (
    "SELECT success, result FROM run_command_on_workers("
    "format('GRANT %I TO %I', CAST(:group AS text), CAST(:role AS text)))"
)
_MEMBER_ON_WORKERS = (
    "SELECT success, result FROM run_command_on_workers(format("
    "'SELECT pg_has_role(%L, %L, ''MEMBER'')', CAST(:role AS text), CAST(:group AS text)))"
)
_WORKER_ATTEMPTS = 3
"""A worker's GRANT can be cancelled by Citus's distributed deadlock detection while the
cluster settles the role commands of the transaction that just committed; it is tried again."""


async def grant_membership_on_workers(conn: AsyncConnection, setup: RoleSetup) -> None:
    """On a Citus coordinator, after setup_roles' transaction committed: the runtime role's group
    membership on every worker too. Citus propagates `GRANT role TO role` only for roles it knows
    through this database, and a login role first made for another database of the cluster is
    not one, so its requests would lack the group's grants on the workers that hold the shards.
    (Inside setup_roles' own transaction it would wait for the group Citus creates at commit.)
    Workers where the role is already a member are left alone (a second `roles setup` sends no
    GRANT); a GRANT cancelled as a distributed deadlock is tried up to 3 times, 0.5 s apart.

    Raises RoleSetupError naming the worker's error when a GRANT still fails."""
    await conn.execute(_sql(CATALOG_ONLY_SQL), CATALOG_ONLY_PARAMETERS)
    if not await conn.scalar(_sql(_HAS_CITUS)):
        return
    params = {"group": setup.group, "role": setup.login_role}
    for attempt in range(1, _WORKER_ATTEMPTS + 1):
        members = (await conn.execute(_sql(_MEMBER_ON_WORKERS), params)).all()
        if all(success and result == "t" for success, result in members):
            return
        failures = [
            result
            for success, result in await conn.execute(_sql(_GRANT_ON_WORKERS), params)
            if not success
        ]
        if not failures:
            return
        if attempt == _WORKER_ATTEMPTS or not all("deadlock" in str(f) for f in failures):
            raise RoleSetupError(
                f"cannot grant {setup.group} to {setup.login_role} on a worker: {failures[0]}"
            )
        await asyncio.sleep(0.5)


async def _lock_down_database(conn: AsyncConnection, login_role: str, group: str) -> None:
    """Only set-up login roles connect (roles are cluster-wide: a login role set up for another
    database must not reach this one), and no one but the owner creates temporary tables or
    objects in `public` (PostgreSQL 15+ already refuses the latter by default). CONNECT held by
    this database's group is also the mark that it was set up for a runtime role."""
    database = await conn.scalar(_sql("SELECT current_database()"))
    await _exec_formatted(conn, "REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC", database)
    await _exec_formatted(conn, "GRANT CONNECT ON DATABASE %I TO CURRENT_USER", database)
    await _exec_formatted(conn, "GRANT CONNECT ON DATABASE %I TO %I", database, group)
    await _exec_formatted(conn, "GRANT CONNECT ON DATABASE %I TO %I", database, login_role)
    await conn.exec_driver_sql("REVOKE CREATE ON SCHEMA public FROM PUBLIC")


_AS_OWNER = "(SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)"
_EXTRAS = f"""
    SELECT 'DATABASE', pg_catalog.quote_ident(d.datname), a.privilege_type,
           pg_catalog.quote_ident(r.rolname)
    FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) a
    JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
    WHERE d.datname = pg_catalog.current_database() AND r.rolname = ANY(:roles)
      AND a.privilege_type <> 'CONNECT'
    UNION ALL
    SELECT 'SCHEMA', pg_catalog.quote_ident(n.nspname), a.privilege_type,
           pg_catalog.quote_ident(r.rolname)
    FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
    JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
    WHERE r.rolname = ANY(:roles) AND n.nspowner = {_AS_OWNER}
      AND (a.privilege_type <> 'USAGE' OR r.rolname = :login)
    UNION ALL
    SELECT CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
           pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
           a.privilege_type, pg_catalog.quote_ident(r.rolname)
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
         pg_catalog.aclexplode(c.relacl) a JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
    WHERE r.rolname = ANY(:roles) AND c.relowner = {_AS_OWNER}
      AND (r.rolname = :login OR n.nspname = :registry
           OR a.privilege_type NOT IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE', 'USAGE'))
    UNION ALL
    SELECT 'COLUMN', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
           || ' (' || pg_catalog.quote_ident(t.attname) || ')', a.privilege_type,
           pg_catalog.quote_ident(r.rolname)
    FROM pg_catalog.pg_attribute t JOIN pg_catalog.pg_class c ON c.oid = t.attrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
         pg_catalog.aclexplode(t.attacl) a JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
    WHERE r.rolname = ANY(:roles) AND c.relowner = {_AS_OWNER}
      AND (r.rolname = :login OR a.privilege_type <> 'SELECT')
    UNION ALL
    SELECT 'DEFAULT ' || CAST(d.defaclobjtype AS text),
           coalesce(pg_catalog.quote_ident(n.nspname), ''), a.privilege_type,
           pg_catalog.quote_ident(r.rolname)
    FROM pg_catalog.pg_default_acl d
    LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace,
         pg_catalog.aclexplode(d.defaclacl) a JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
    WHERE r.rolname = ANY(:roles) AND d.defaclrole = {_AS_OWNER}
      AND (r.rolname = :login
           OR NOT (d.defaclobjtype = 'r' AND a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE',
                                                                   'DELETE')
                   OR d.defaclobjtype = 'S' AND a.privilege_type = 'USAGE'))"""
"""What the runtime group or its login role holds, on what the owner owns in this database,
beyond what `roles setup` grants (CONNECT; USAGE on schemas; rows on tables and USAGE on
sequences in tenant schemas, by the group, now and by default; SELECT on registry columns):
CREATE or TEMPORARY on the database, CREATE on a schema, TRIGGER, TRUNCATE or REFERENCES on a
table, anything table-wide or any column's write on the registry, default privileges beyond the
rows, and anything held by the login role itself, which gets its rights through the group only.
Rows: (kind, quoted target, privilege keyword, quoted role)."""
_DEFAULT_OBJECTS = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"}
_PRIVILEGE_KEYWORDS = frozenset(
    {
        "CREATE",
        "TEMPORARY",
        "USAGE",
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "TRUNCATE",
        "REFERENCES",
        "TRIGGER",
        "MAINTAIN",
        "CONNECT",
        "EXECUTE",
    }
)
_OWNED_HERE = """
    SELECT count(*) FROM pg_catalog.pg_shdepend s
    WHERE s.deptype = 'o'
      AND s.dbid = (SELECT oid FROM pg_catalog.pg_database
                    WHERE datname = pg_catalog.current_database())
      AND s.refobjid IN (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = ANY(:roles))"""
"""Objects in this database the runtime group or its login role owns (a function, a table, a
type): the API owns nothing; what it made could be run by the owner's migrations."""


async def _take_back_extras(conn: AsyncConnection, login_role: str, group: str) -> None:
    """Refuse a runtime role that owns objects here, then revoke `_EXTRAS` (granted by hand, or
    left by an older setup): with CREATE on a schema or TRIGGER on a table the API could plant
    code that the owner's migrations or a superuser's session might run. Runs as the owner, on
    what the owner owns (a grant on another role's object is that role's to revoke). Names come
    quoted from the catalog; the privilege is checked against PostgreSQL's keywords before it is
    put into the statement."""
    roles = [login_role, group]
    owned = await conn.scalar(_sql(_OWNED_HERE), {"roles": roles})
    if owned:
        raise RoleSetupError(
            f"the runtime role {login_role!r} (or its group) owns {owned} object(s) in this"
            f" database: the API must own nothing; inspect them, then `DROP OWNED BY"
            f" {login_role}` (it also drops its grants) and run this again"
        )
    params = {"roles": roles, "login": login_role, "registry": REGISTRY_SCHEMA}
    for kind, target, privilege, role in (await conn.execute(_sql(_EXTRAS), params)).all():
        if privilege not in _PRIVILEGE_KEYWORDS:
            raise RoleSetupError(f"unexpected privilege {privilege!r} on {target}")
        if kind == "COLUMN":
            table, _, column = target.partition(" ")
            statement = f"REVOKE {privilege} {column} ON TABLE {table} FROM {role}"
        elif kind.startswith("DEFAULT "):
            objects = _DEFAULT_OBJECTS[kind.removeprefix("DEFAULT ")]
            where = f" IN SCHEMA {target}" if target else ""
            statement = (
                f"ALTER DEFAULT PRIVILEGES{where} REVOKE {privilege} ON {objects} FROM {role}"
            )
        else:
            statement = f"REVOKE {privilege} ON {kind} {target} FROM {role}"
        await conn.exec_driver_sql(statement)


async def _role_exists(conn: AsyncConnection, role: str) -> bool:
    return bool(await conn.scalar(_sql(_ROLE_EXISTS), {"role": role}))


async def _create_role(
    conn: AsyncConnection, role: str, kind: str, password: str | None = None
) -> bool:
    """True when created; an existing role (maybe made by a concurrent setup) is left as it is."""
    if await _role_exists(conn, role):
        return False
    template, args = f"CREATE ROLE %I {kind}", [role]
    if password is not None:
        template, args = template + " PASSWORD %L", [role, password]
    from sqlalchemy.exc import DBAPIError

    try:
        async with conn.begin_nested():
            await _exec_formatted(conn, template, *args)
    except DBAPIError as exc:
        cause = getattr(exc.orig, "__cause__", None)
        if not isinstance(cause, asyncpg.DuplicateObjectError | asyncpg.UniqueViolationError):
            raise
        return False
    return True


async def _refuse_privileged(conn: AsyncConnection, role: str, what: str = "runtime role") -> None:
    """A runtime role that is, or can become (membership, SET ROLE), a superuser, a role that
    may create roles or databases or bypass row security, or one of PRIVILEGED_PREDEFINED_ROLES
    would make the whole split pointless."""
    found = await conn.scalar(
        _sql(_PRIVILEGED), {"role": role, "predefined": list(PRIVILEGED_PREDEFINED_ROLES)}
    )
    if found is None:
        return
    how = "is" if found == role else f"can become {found!r}, which is"
    raise RoleSetupError(
        f"{what} {role!r} {how} a superuser, may create roles or databases, bypass row "
        "security or read/write all data or server files: use a plain role"
    )


async def _exec_formatted(conn: AsyncConnection, template: str, *args: str) -> None:
    """Utility statements take no bound parameters: PostgreSQL's format() quotes %I and %L."""
    params = {f"a{i}": arg for i, arg in enumerate(args)}
    placeholders = "".join(f", CAST(:{name} AS text)" for name in params)
    statement = await conn.scalar(
        _sql(f"SELECT pg_catalog.format(:template{placeholders})"), {"template": template, **params}
    )
    await conn.exec_driver_sql(statement)


async def _run_all(conn: AsyncConnection, statements: list[str]) -> None:
    for statement in statements:
        await conn.exec_driver_sql(statement)
