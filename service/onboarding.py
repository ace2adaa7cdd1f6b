"""What a new tenant of this service is made of, and where a deployment seeds its default rows.

`tenantry tenants create` and `POST /admin/tenants` both build tenants from `tenant_blueprint()`:
the tables of `service.models` at the tenant track's head (rendered once, not replayed revision
by revision), then `seed_new_tenant` if one is set, all in the onboarding transaction.
The CLI passes the alembic.ini path instead of loaded tracks: the same script, cached whole
beside the revisions, so `tenantry tenants create` imports no Alembic, SQLAlchemy, FastAPI or
router (nor the models) while the cache is warm, and goes over one plain asyncpg connection
unless a seed hook is set.
"""

from pathlib import Path
from typing import TYPE_CHECKING

from tenancy.lifecycle.blueprint import SeedHook, TenantBlueprint
from tenancy.lifecycle.schema_builders.head_ddl import CachedHeadDDL, TenantModels

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from tenancy.migrate.tracks import Tracks


seed_new_tenant: SeedHook | None = None
"""The seeding hook: None (every tenant starts empty), or an async function adding the rows
every new tenant should start with, `seed_new_tenant(conn, tenant)`.

It runs inside the onboarding transaction with the tenant's schema as the search_path, so
tables are named without a schema; if it raises, the tenant is not created at all. `conn` is a
SQLAlchemy AsyncConnection (`tenant` a tenancy.lifecycle.blueprint.NewTenant): use Core
statements on it, or an ORM session bound to it, for example::

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    from service.models import Todo
    from tenancy.lifecycle.blueprint import NewTenant


    async def welcome(conn: AsyncConnection, tenant: NewTenant) -> None:
        session = AsyncSession(bind=conn)
        session.add(Todo(content=f"Welcome, {tenant.display_name}!"))
        await session.flush()


    seed_new_tenant = welcome

With a hook set, `tenantry tenants create` creates tenants on a SQLAlchemy engine (as the API
does) rather than over plain asyncpg.
"""


def tenant_metadata() -> "MetaData":
    """The tenant tables (imports the models, and SQLAlchemy with them)."""
    import service.models  # noqa: F401  (every tenant table registers on TenantBase.metadata)
    from service.db import TenantBase

    return TenantBase.metadata


TENANT_MODELS = TenantModels(tenant_metadata, (Path(__file__).resolve().parent,))
"""The models, and the files they are defined in: every module of this package (a cached head
script names their bytes, so any edit here renders it again once)."""


def warm_caches(alembic_ini: Path) -> None:
    """Render and store beside the revisions what short CLI processes read instead of importing
    Alembic and the models: the head script `tenantry tenants create` builds tenants from, and
    the tracks' heads `tenantry migrate` compares with (tenancy.migrate.revision_cache). For an
    image whose source tree its user cannot write (the Dockerfile runs this as it builds)."""
    from tenancy.migrate.heads import load_tracks_remembering_heads

    CachedHeadDDL(alembic_ini, TENANT_MODELS).script()
    load_tracks_remembering_heads(alembic_ini)


def tenant_blueprint(tracks: "Tracks | Path") -> TenantBlueprint:
    """Looks the hook up at each call, so a deployment (or a test) may swap seed_new_tenant.

    `tracks` loaded (the API) or the alembic.ini naming them (a one-tenant process, the CLI)."""
    if isinstance(tracks, Path):
        return TenantBlueprint(CachedHeadDDL(tracks, TENANT_MODELS), seed=seed_new_tenant)
    return TenantBlueprint.from_models(tracks, tenant_metadata(), seed=seed_new_tenant)
