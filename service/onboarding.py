"""What a new tenant of this service is made of, and where a deployment seeds its default rows.

`tenantry tenants create` and `POST /admin/tenants` both build tenants from `tenant_blueprint()`:
the tables of `service.models` at the tenant track's head (rendered once per process, not
replayed revision by revision), then `seed_new_tenant`, all in the onboarding transaction.
The CLI passes the alembic.ini path instead of loaded tracks: the same script, with the stamp
cached beside the revisions, so `tenantry tenants create` imports no Alembic, FastAPI or router.
"""

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from service.models import TenantBase
from tenancy.lifecycle.blueprint import NewTenant, TenantBlueprint
from tenancy.lifecycle.build.head_ddl import CachedHeadDDL
from tenancy.migrate.tracks import Tracks


async def seed_new_tenant(conn: AsyncConnection, tenant: NewTenant) -> None:
    """The seeding hook: add the rows every new tenant should start with here.

    It runs inside the onboarding transaction with the tenant's schema as the search_path, so
    tables are named without a schema; if it raises, the tenant is not created at all. Use
    Core statements on `conn`, or an ORM session bound to it, for example::

        from sqlalchemy.ext.asyncio import AsyncSession
        session = AsyncSession(bind=conn)
        session.add(Todo(content=f"Welcome, {tenant.display_name}!"))
        await session.flush()

    This service starts every tenant empty.
    """


def tenant_blueprint(tracks: Tracks | Path) -> TenantBlueprint:
    """Looks the hook up at each call, so a deployment (or a test) may swap seed_new_tenant.

    `tracks` loaded (the API) or the alembic.ini naming them (a one-tenant process, the CLI)."""
    if isinstance(tracks, Path):
        return TenantBlueprint(CachedHeadDDL(tracks, TenantBase.metadata), seed=seed_new_tenant)
    return TenantBlueprint.from_models(tracks, TenantBase.metadata, seed=seed_new_tenant)
