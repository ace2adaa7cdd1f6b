"""Two database roles: the owner runs DDL (migrations, onboarding); the API runs as a runtime role
that can only read and write rows in tenant schemas and read the registry columns it needs.

The privileges are held by one NOLOGIN group role, `tenantry_runtime`; the API's login role is a
member. Onboarding grants the group each new tenant schema (inside the onboarding transaction),
and default privileges make tables that later migrations add in that schema usable too.
"""

import re
from dataclasses import dataclass

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.naming import REGISTRY_SCHEMA, quote_schema
from tenancy.registry import tenant_schemas

RUNTIME_GROUP = "tenantry_runtime"
"""Holds every privilege of the API; login roles get them by membership."""

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

_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

_ONE_SETUP_AT_A_TIME = text("SELECT pg_advisory_xact_lock(hashtext('tenantry roles setup'))")
"""Concurrent GRANTs on one object fail ("tuple concurrently updated"): API workers starting
together on the embedded server each run the setup."""
_IS_MEMBER = text("SELECT pg_has_role(:role, :group, 'MEMBER')")
_ROLE_EXISTS = text("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = :role)")
_PRIVILEGED = text(
    "SELECT rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb FROM pg_roles "
    "WHERE rolname = :role"
)


class RoleSetupError(Exception):
    """The runtime role cannot be set up as asked (a bad name, a superuser, no registry yet)."""


@dataclass(frozen=True, slots=True)
class RoleSetup:
    login_role: str
    created: bool
    tenant_schemas: int
    registry_granted: bool


def checked_role(name: str) -> str:
    """Role names come from settings, never from requests; still, only [a-z0-9_], as for schemas."""
    if _ROLE_NAME.fullmatch(name) is None:
        raise RoleSetupError(f"unsupported role name {name[:80]!r}: use a-z, 0-9 and '_'")
    return name


def tenant_grants(schema: str) -> list[str]:
    """Rows in every table and sequence of one tenant schema: those there now and those to come.

    Default privileges apply to objects the current (owner) role creates later in that schema,
    so tables that tenant migrations add need no grant of their own.
    """
    quoted = quote_schema(schema)
    rows = "SELECT, INSERT, UPDATE, DELETE"
    return [
        f"GRANT USAGE ON SCHEMA {quoted} TO {RUNTIME_GROUP}",
        f"GRANT {rows} ON ALL TABLES IN SCHEMA {quoted} TO {RUNTIME_GROUP}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {quoted} TO {RUNTIME_GROUP}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {quoted} GRANT {rows} ON TABLES TO {RUNTIME_GROUP}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {quoted} GRANT USAGE ON SEQUENCES TO {RUNTIME_GROUP}",
    ]


def registry_grants() -> list[str]:
    grants = [f"GRANT USAGE ON SCHEMA {REGISTRY_SCHEMA} TO {RUNTIME_GROUP}"]
    for table, columns in REGISTRY_GRANTS.items():
        grants.append(
            f"GRANT SELECT ({', '.join(columns)}) ON {REGISTRY_SCHEMA}.{table} TO {RUNTIME_GROUP}"
        )
    return grants


async def grant_runtime(conn: AsyncConnection, schema: str) -> None:
    """Let the runtime role use one tenant schema, inside the caller's (onboarding) transaction.

    Nothing to do where no runtime role was set up (one role for everything).
    """
    if await _role_exists(conn, RUNTIME_GROUP):
        await _run_all(conn, tenant_grants(schema))


async def setup_roles(
    conn: AsyncConnection,
    login_role: str,
    password: str | None = None,
    *,
    require_registry: bool = True,
) -> RoleSetup:
    """Create (if absent) the runtime group and its login role, and grant what the API needs.

    Run as the owner after the migrations, in one transaction; idempotent, so it also brings an
    existing deployment's tenant schemas up to date. An existing login role keeps its password.
    """
    login_role = checked_role(login_role)
    await conn.execute(_ONE_SETUP_AT_A_TIME)
    if login_role == await conn.scalar(text("SELECT current_user")):
        raise RoleSetupError(
            f"the runtime role {login_role!r} is the owner role itself: give the API a role "
            "of its own (TENANTRY_DATABASE_URL) and the owner another (TENANTRY_OWNER_DATABASE_URL)"
        )
    has_registry = await conn.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": _TENANTS})
    if require_registry and not has_registry:
        raise RoleSetupError("no registry yet: run `tenantry migrate` first")
    await _create_role(conn, RUNTIME_GROUP, "NOLOGIN")
    created = await _create_role(conn, login_role, "LOGIN", password)
    await _refuse_privileged(conn, login_role)
    if not await conn.scalar(_IS_MEMBER, {"role": login_role, "group": RUNTIME_GROUP}):
        await _exec_formatted(conn, f"GRANT {RUNTIME_GROUP} TO %I", login_role)
    await _lock_down_database(conn, login_role)
    schemas: list[str] = []
    if has_registry:
        await _run_all(conn, registry_grants())
        schemas = await _existing(conn, await tenant_schemas(conn))
        for schema in schemas:
            await _run_all(conn, tenant_grants(schema))
    return RoleSetup(login_role, created, len(schemas), bool(has_registry))


_TENANTS = f"{REGISTRY_SCHEMA}.tenants"
_EXISTING = text("SELECT nspname FROM pg_namespace WHERE nspname = ANY(:schemas)")


async def _existing(conn: AsyncConnection, schemas: list[str]) -> list[str]:
    """The schemas that exist, in order: a registered tenant whose schema was dropped by hand has
    nothing to grant (`tenantry migrate` reports it, `tenants purge` settles it)."""
    present = set(await conn.scalars(_EXISTING, {"schemas": schemas}))
    return [schema for schema in schemas if schema in present]


async def _lock_down_database(conn: AsyncConnection, login_role: str) -> None:
    """Only set-up login roles connect (the group role is cluster-wide: a login role set up for
    another database must not reach this one), and no one but the owner creates temporary
    tables or objects in `public` (PostgreSQL 15+ already refuses the latter by default)."""
    database = await conn.scalar(text("SELECT current_database()"))
    await _exec_formatted(conn, "REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC", database)
    await _exec_formatted(conn, "GRANT CONNECT ON DATABASE %I TO CURRENT_USER", database)
    await _exec_formatted(conn, "GRANT CONNECT ON DATABASE %I TO %I", database, login_role)
    await conn.exec_driver_sql("REVOKE CREATE ON SCHEMA public FROM PUBLIC")


async def _role_exists(conn: AsyncConnection, role: str) -> bool:
    return bool(await conn.scalar(_ROLE_EXISTS, {"role": role}))


async def _create_role(
    conn: AsyncConnection, role: str, kind: str, password: str | None = None
) -> bool:
    """True when created; an existing role (maybe made by a concurrent setup) is left as it is."""
    if await _role_exists(conn, role):
        return False
    template, args = f"CREATE ROLE %I {kind}", [role]
    if password is not None:
        template, args = template + " PASSWORD %L", [role, password]
    try:
        async with conn.begin_nested():
            await _exec_formatted(conn, template, *args)
    except DBAPIError as exc:
        cause = getattr(exc.orig, "__cause__", None)
        if not isinstance(cause, asyncpg.DuplicateObjectError | asyncpg.UniqueViolationError):
            raise
        return False
    return True


async def _refuse_privileged(conn: AsyncConnection, role: str) -> None:
    """A runtime role that may bypass privileges would make the whole split pointless."""
    if await conn.scalar(_PRIVILEGED, {"role": role}):
        raise RoleSetupError(
            f"runtime role {role!r} is a superuser or may create roles or databases or bypass "
            "row security: use a plain role"
        )


async def _exec_formatted(conn: AsyncConnection, template: str, *args: str) -> None:
    """Utility statements take no bound parameters: PostgreSQL's format() quotes %I and %L."""
    params = {f"a{i}": arg for i, arg in enumerate(args)}
    placeholders = "".join(f", CAST(:{name} AS text)" for name in params)
    statement = await conn.scalar(
        text(f"SELECT format(:template{placeholders})"), {"template": template, **params}
    )
    await conn.exec_driver_sql(statement)


async def _run_all(conn: AsyncConnection, statements: list[str]) -> None:
    for statement in statements:
        await conn.exec_driver_sql(statement)
