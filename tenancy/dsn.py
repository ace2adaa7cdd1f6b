"""The owner's database for raw asyncpg connections, without importing SQLAlchemy when the URL
is configured (a `tenantry migrate` with nothing to do needs nothing else of it)."""

import re
from typing import TYPE_CHECKING

from tenancy.settings import TenancySettings

if TYPE_CHECKING:
    import asyncpg

_DRIVER = re.compile(r"postgres(?:ql)?(?:\+[a-z0-9_]+)?://", re.IGNORECASE)


def plain_dsn(url: str) -> str:
    """`postgresql+asyncpg://user@host/db?...` as asyncpg takes it: the driver dropped from the
    scheme, the rest (already URL-quoted) as given."""
    scheme = _DRIVER.match(url)
    if scheme is None:
        from sqlalchemy import make_url

        return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return "postgresql://" + url[scheme.end() :]


async def owner_url(settings: TenancySettings) -> str:
    """tenancy.database.database_url(), which SQLAlchemy is imported for only when the URL is
    not configured (the embedded server's owner is set up through it)."""
    configured = settings.owner_database_url or settings.database_url
    if configured:
        return configured
    from tenancy.database import database_url

    return await database_url(settings)


async def owner_connection(settings: TenancySettings) -> "asyncpg.Connection":
    """One plain asyncpg connection as the owner, opened as the owner's engine opens its own
    (tenancy.database.create_engine): the same login, the same application_name, and no
    statement cache behind PgBouncer."""
    import asyncpg

    return await asyncpg.connect(
        plain_dsn(await owner_url(settings)),
        server_settings={"application_name": settings.application_name},
        **({"statement_cache_size": 0} if settings.pgbouncer else {}),
    )
