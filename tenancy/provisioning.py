"""Creating a tenant: registry row, schema, every table at head, seed rows and a first key.

All of it happens in one transaction, step by step (`ONBOARDING_STEPS`): a failure at any step,
or a client killed mid-way, leaves no row, no schema and no key behind. Two creates of one slug
meet at the registry's unique index: the second waits for the first and then fails cleanly.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Self

import asyncpg
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenancy.keys import NewKey, new_api_key
from tenancy.lifecycle.api_keys import add_key, create_key, revoke_key
from tenancy.lifecycle.blueprint import NewTenant, TenantBlueprint, as_blueprint
from tenancy.lifecycle.build import run_script
from tenancy.lifecycle.catchup import refuse_if_behind
from tenancy.lifecycle.errors import TenantExists, UnknownKey, UnknownTenant
from tenancy.lifecycle.status import set_status
from tenancy.migrate.tracks import Tracks
from tenancy.naming import quote_schema, tenant_schema, tenant_search_path, validate_slug
from tenancy.registry import announce_change, tenants
from tenancy.roles import grant_runtime
from tenancy.search_path import ENTER_SCHEMA as SET_TENANT_SEARCH_PATH

__all__ = [
    "ONBOARDING_STEPS",
    "CreatedTenant",
    "TenantExists",
    "UnknownKey",
    "UnknownTenant",
    "create_key",
    "create_tenant",
    "prepare_schema",
    "revoke_key",
    "run_steps",
    "set_status",
]


OnboardingStep = Callable[[AsyncConnection, Any], Awaitable[None]]
"""One step of bringing a tenant into being, run inside the shared transaction."""


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

    @classmethod
    def of(cls, slug: str, display_name: str | None = None, **more: Any) -> Self:
        return cls(validate_slug(slug), tenant_schema(slug), display_name or slug, **more)

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
    engine: AsyncEngine,
    blueprint: TenantBlueprint | Tracks,
    slug: str,
    display_name: str | None = None,
) -> CreatedTenant:
    """One transaction: a failure at any step leaves no row, no schema and no key behind.

    Pass the blueprint the service builds from its models (the fast path); bare Tracks still
    work and replay every revision. Raises ProcessBehind (nothing created) when a deploy put a
    newer tenant head on disk than the one this process loaded with its models.
    """
    creation = Creation.of(slug, display_name, blueprint=as_blueprint(blueprint))
    refuse_if_behind(creation.blueprint.builder.tracks)
    return await run_steps(engine, creation, ONBOARDING_STEPS)


async def run_steps(
    engine: AsyncEngine, onboarding: Onboarding, steps: Iterable[OnboardingStep]
) -> CreatedTenant:
    """Every step in one transaction, in order: all of them happen or none does."""
    async with engine.begin() as conn:
        for step in steps:
            await step(conn, onboarding)
    return onboarding.created()


async def register(conn: AsyncConnection, onboarding: Onboarding) -> None:
    """The registry row first: a concurrent create of the same slug waits here, then fails."""
    async with duplicates_as(TenantExists(f"tenant {onboarding.slug!r} already exists")):
        onboarding.tenant_id = await conn.scalar(
            insert(tenants)
            .values(
                slug=onboarding.slug,
                schema_name=onboarding.schema,
                display_name=onboarding.display_name,
            )
            .returning(tenants.c.id)
        )


async def create_schema(conn: AsyncConnection, onboarding: Onboarding) -> None:
    """The search_path first (it may name a schema that does not exist yet), then the schema.

    CREATE SCHEMA goes over the simple query protocol: a statement that is new for every tenant
    gains nothing from being prepared but a round trip.
    """
    await conn.execute(SET_TENANT_SEARCH_PATH, {"schema": tenant_search_path(onboarding.schema)})
    async with duplicates_as(TenantExists(f"schema {onboarding.schema} already exists")):
        await run_script(conn, f"CREATE SCHEMA {quote_schema(onboarding.schema)}")


async def build_tables(conn: AsyncConnection, creation: Creation) -> None:
    await creation.blueprint.builder.build(conn, creation.schema)


async def prepare_schema(conn: AsyncConnection, schema: str) -> None:
    """The one place for per-schema privileges (e.g. GRANTs to a runtime role).

    Runs once the schema's tables exist, on every path that brings a tenant schema into being
    (create and import), inside that path's transaction, so `GRANT ... ON ALL TABLES IN SCHEMA`
    covers them and `ALTER DEFAULT PRIVILEGES IN SCHEMA` covers tables later migrations add.
    """
    await grant_runtime(conn, schema)


async def grant(conn: AsyncConnection, onboarding: Onboarding) -> None:
    await prepare_schema(conn, onboarding.schema)


async def seed(conn: AsyncConnection, creation: Creation) -> None:
    """The deployment's default rows (see TenantBlueprint.seed), in the tenant's schema."""
    if creation.blueprint.seed is not None:
        await creation.blueprint.seed(conn, creation.new_tenant())


async def issue_first_key(conn: AsyncConnection, onboarding: Onboarding) -> None:
    await add_key(conn, onboarding.tenant_id, onboarding.key)


async def announce(conn: AsyncConnection, onboarding: Onboarding) -> None:
    """Delivered only on commit: API processes that cached 'no such tenant' forget it."""
    await announce_change(conn, onboarding.slug)


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
    except (DBAPIError, asyncpg.PostgresError) as exc:
        cause = getattr(exc.orig, "__cause__", None) if isinstance(exc, DBAPIError) else exc
        if isinstance(cause, asyncpg.UniqueViolationError | asyncpg.DuplicateSchemaError):
            raise error from None
        raise
