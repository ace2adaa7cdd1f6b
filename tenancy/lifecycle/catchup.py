"""Bring a schema that comes back (restore, import) up to the tenant track's head."""

from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.lifecycle.errors import LifecycleError
from tenancy.migrate.tracks import Tracks, run_track
from tenancy.naming import tenant_search_path
from tenancy.session import SET_TENANT_SEARCH_PATH


class SchemaNotUpgradable(LifecycleError):
    """The schema's revision is not in this code's history (newer code wrote it?)."""


async def bring_to_head(conn: AsyncConnection, tracks: Tracks, schema: str) -> None:
    """Real Alembic, in conn's transaction: nothing to do at head, every missing revision else.

    Archived schemas are skipped by `migrate`, and an export may come from older code.
    """
    await conn.execute(SET_TENANT_SEARCH_PATH, {"schema": tenant_search_path(schema)})
    try:
        await conn.run_sync(run_track, tracks.tenant, schema)
    except (CommandError, RevisionError) as exc:
        raise SchemaNotUpgradable(f"cannot bring {schema} to head: {exc}") from None
