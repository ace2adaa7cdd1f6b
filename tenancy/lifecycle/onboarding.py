"""Creating a tenant: registry row, schema, every table at head, grants, seed rows, a first key.

All of it happens in one transaction, step by step (`ONBOARDING_STEPS`): a failure at any step,
or a client killed mid-way, leaves no row, no schema and no key behind. Two creates of one slug
meet at the registry's unique index: the second waits for the first and then fails cleanly.

The steps run over a plain asyncpg connection already inside that transaction, with SQL
constants and bound parameters (a schema name only ever through tenancy.naming's quoting), so
there is one implementation for both ways in:

- `create_tenant(engine, ...)`: on a SQLAlchemy engine (the API, tests, a CLI whose deployment
  set a seed hook): inside `engine.begin()`, over its driver connection; a seed hook is given
  the SQLAlchemy connection of the same transaction.
- `create_tenant_on(conn, ...)`: on one plain asyncpg connection (`tenantry tenants create`):
  imports no SQLAlchemy (this module and what it imports are light: tests/cli/test_cli_imports.py).
"""

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

import asyncpg

from tenancy.keys import NewKey, new_api_key
from tenancy.lifecycle.blueprint import NewTenant, TenantBlueprint
from tenancy.lifecycle.catchup import refuse_if_behind
from tenancy.lifecycle.driver import driver_connection
from tenancy.lifecycle.errors import InvalidDisplayName, TenantExists
from tenancy.lifecycle.schema_builders import run_script
from tenancy.naming import (
    NOTIFY_CHANNEL,
    REGISTRY_SCHEMA,
    quote_schema,
    tenant_schema,
    validate_slug,
)
from tenancy.roles import grant_runtime
from tenancy.search_path import ENTER_SCHEMA_ASYNCPG, search_path_value

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


OnboardingStep = Callable[[asyncpg.Connection, Any], Awaitable[None]]
"""One step of bringing a tenant into being, run inside the shared transaction."""

REGISTER = (
    f"INSERT INTO {REGISTRY_SCHEMA}.tenants (slug, schema_name, display_name)"
    " VALUES ($1, $2, $3) RETURNING id"
)
ADD_KEY = (
    f"INSERT INTO {REGISTRY_SCHEMA}.api_keys (key_id, tenant_id, key_hash) VALUES ($1, $2, $3)"
)
ANNOUNCE = "SELECT pg_notify($1, $2)"

DISPLAY_NAME_MAX_LENGTH = 200
"""Characters; the admin API's `display_name` field and every other way in share the rule."""
DISPLAY_NAME_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"
"""No control character (Unicode category Cc: tab, newline, NUL, DEL, C1) and no bidirectional
override or isolate (U+202A-U+202E, U+2066-U+2069), which would reorder what tables print."""
_REFUSED = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def checked_display_name(display_name: str | None, slug: str) -> str:
    """The display name a tenant gets, surrounding whitespace stripped: the slug when none (or a
    blank one) is given.

    Raises InvalidDisplayName for one longer than DISPLAY_NAME_MAX_LENGTH characters or holding a
    control character (it is printed in tables and logs), the same rule as the admin API's."""
    display_name = (display_name or "").strip()  # as the admin API's str_strip_whitespace
    if not display_name:
        return slug
    if len(display_name) > DISPLAY_NAME_MAX_LENGTH:
        raise InvalidDisplayName(
            f"display name is {len(display_name)} characters long; at most "
            f"{DISPLAY_NAME_MAX_LENGTH} are allowed"
        )
    if _REFUSED.search(display_name):
        raise InvalidDisplayName(
            "display name holds a control character (tab, newline, ...) or a bidirectional "
            "override: use plain text"
        )
    return display_name


@dataclass(frozen=True, slots=True)
class CreatedTenant:
    slug: str
    schema: str
    display_name: str
    key_id: str
    api_key: str


@dataclass
class Onboarding:
    """A tenant coming into being: what the steps read, and its registry id once there is one."""

    slug: str
    schema: str
    display_name: str
    key: NewKey = field(default_factory=new_api_key)
    tenant_id: int = 0
    sqlalchemy: "AsyncConnection | None" = field(default=None, kw_only=True)
    """The SQLAlchemy connection whose transaction the steps run in, on an engine (a seed hook,
    Alembic and an import's own steps use it); None on a plain asyncpg connection."""

    @classmethod
    def of(cls, slug: str, display_name: str | None = None, **more: Any) -> Self:
        slug = validate_slug(slug)
        return cls(slug, tenant_schema(slug), checked_display_name(display_name, slug), **more)

    def new_tenant(self) -> NewTenant:
        return NewTenant(self.tenant_id, self.slug, self.schema, self.display_name)

    def created(self) -> CreatedTenant:
        return CreatedTenant(
            self.slug, self.schema, self.display_name, self.key.key_id, self.key.token
        )


@dataclass
class Creation(Onboarding):
    blueprint: TenantBlueprint = field(kw_only=True)


async def create_tenant(
    engine: "AsyncEngine", blueprint: TenantBlueprint, slug: str, display_name: str | None = None
) -> CreatedTenant:
    """One transaction on the engine: a failure at any step leaves no row, no schema, no key.

    Raises ProcessBehind (nothing created) when a deploy put a newer tenant head on disk than
    the one this process loaded with its models.
    """
    creation = Creation.of(slug, display_name, blueprint=blueprint)
    refuse_if_behind(blueprint.builder.tracks)
    return await run_steps(engine, creation, ONBOARDING_STEPS)


async def create_tenant_on(
    conn: asyncpg.Connection,
    blueprint: TenantBlueprint,
    slug: str,
    display_name: str | None = None,
    *,
    before_commit: Callable[[], None] = lambda: None,
) -> CreatedTenant:
    """The same steps in one transaction on a plain asyncpg connection (no SQLAlchemy at all).

    A blueprint with a seed hook needs create_tenant: the hook is given a SQLAlchemy connection.
    `before_commit` is called once every step has run, just before COMMIT (an engine has its
    `commit` event for that: the CLI holds Ctrl-C from there until it has printed the key).
    """
    if blueprint.seed is not None:
        raise ValueError("a blueprint with a seed hook is created on an engine (create_tenant)")
    creation = Creation.of(slug, display_name, blueprint=blueprint)
    refuse_if_behind(blueprint.builder.tracks)
    return await run_steps_on(conn, creation, ONBOARDING_STEPS, before_commit)


async def run_steps(
    engine: "AsyncEngine", onboarding: Onboarding, steps: Iterable[OnboardingStep]
) -> CreatedTenant:
    """Every step in one transaction of the engine's, in order: all of them happen or none does."""
    async with engine.begin() as conn:
        onboarding.sqlalchemy = conn
        raw = await driver_connection(conn)
        for step in steps:
            await step(raw, onboarding)
    return onboarding.created()


async def run_steps_on(
    conn: asyncpg.Connection,
    onboarding: Onboarding,
    steps: Iterable[OnboardingStep],
    before_commit: Callable[[], None] = lambda: None,
) -> CreatedTenant:
    """Every step in one transaction on `conn`, in order: all of them happen or none does."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        for step in steps:
            await step(conn, onboarding)
    except BaseException:
        await transaction.rollback()
        raise
    before_commit()
    await transaction.commit()
    return onboarding.created()


async def register(conn: asyncpg.Connection, onboarding: Onboarding) -> None:
    """The registry row first: a concurrent create of the same slug waits here, then fails."""
    async with duplicates_as(TenantExists(f"tenant {onboarding.slug!r} already exists")):
        onboarding.tenant_id = await conn.fetchval(
            REGISTER, onboarding.slug, onboarding.schema, onboarding.display_name
        )


async def create_schema(conn: asyncpg.Connection, onboarding: Onboarding) -> None:
    """The search_path first (it may name a schema that does not exist yet), then the schema.

    CREATE SCHEMA goes over the simple query protocol: a statement that is new for every tenant
    gains nothing from being prepared but a round trip.
    """
    await conn.fetchval(ENTER_SCHEMA_ASYNCPG, search_path_value(onboarding.schema))
    async with duplicates_as(TenantExists(f"schema {onboarding.schema} already exists")):
        await run_script(conn, f"CREATE SCHEMA {quote_schema(onboarding.schema)}")


async def build_tables(conn: asyncpg.Connection, creation: Creation) -> None:
    await creation.blueprint.builder.build(conn, creation.schema, creation.sqlalchemy)


async def grant(conn: asyncpg.Connection, onboarding: Onboarding) -> None:
    """The runtime role's privileges on the schema, once its tables exist (tenancy.roles):
    the step of every path that brings a tenant schema into being (create and import)."""
    await grant_runtime(conn, onboarding.schema)


async def seed(conn: asyncpg.Connection, creation: Creation) -> None:
    """The deployment's default rows (see TenantBlueprint.seed), in the tenant's schema."""
    if creation.blueprint.seed is None:
        return
    if creation.sqlalchemy is None:
        raise RuntimeError("a seed hook needs a SQLAlchemy connection: use create_tenant")
    await creation.blueprint.seed(creation.sqlalchemy, creation.new_tenant())


async def issue_first_key(conn: asyncpg.Connection, onboarding: Onboarding) -> None:
    await add_key(conn, onboarding.tenant_id, onboarding.key)


async def add_key(conn: asyncpg.Connection, tenant_id: int, key: NewKey) -> None:
    """A key row (its hash only), in the caller's transaction."""
    await conn.execute(ADD_KEY, key.key_id, tenant_id, key.key_hash)


async def announce(conn: asyncpg.Connection, onboarding: Onboarding) -> None:
    """Delivered only on commit: API processes that cached 'no such tenant' forget it."""
    await conn.fetchval(ANNOUNCE, NOTIFY_CHANNEL, onboarding.slug)


ONBOARDING_STEPS: tuple[OnboardingStep, ...] = (
    register,
    create_schema,
    build_tables,
    grant,
    seed,
    issue_first_key,
    announce,
)


@asynccontextmanager
async def duplicates_as(error: TenantExists) -> AsyncIterator[None]:
    """Turn a unique violation or an existing schema into the given TenantExists."""
    try:
        yield
    except (asyncpg.UniqueViolationError, asyncpg.DuplicateSchemaError):
        raise error from None
