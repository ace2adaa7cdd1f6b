"""Bring a schema that comes back (restore, import) up to the tenant track's head, and refuse
to when this process's code is older than what is deployed."""

from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.lifecycle.errors import LifecycleError, ProcessBehind
from tenancy.migrate.tracks import Tracks, run_track
from tenancy.naming import quote_schema
from tenancy.session import SET_TENANT_SEARCH_PATH


class SchemaNotUpgradable(LifecycleError):
    """The schema's revision is in no history this code or the deployed revisions know."""


def refuse_if_behind(tracks: Tracks) -> None:
    """Raise ProcessBehind when a deploy put a newer tenant head on disk than the one this
    process loaded with its models: what it would build and stamp is already out of date."""
    disk_head = tracks.disk_head()
    if disk_head is not None:
        raise ProcessBehind(
            f"this process loaded tenant revisions up to {tracks.tenant_head} but {disk_head} "
            "is deployed: restart it (or use an up-to-date one) before creating or restoring "
            "tenants"
        )


async def bring_to_head(conn: AsyncConnection, tracks: Tracks, schema: str) -> None:
    """Real Alembic, in conn's transaction: nothing to do at head, every missing revision else.

    Archived schemas are skipped by `migrate`, and an export may come from older code. A schema
    at a revision this process does not know raises ProcessBehind when the revisions on disk
    know it (newer code wrote it), SchemaNotUpgradable when nobody does or when a revision fails
    on it (a schema without a version table gets every revision replayed onto its tables); the
    caller's transaction is then rolled back with everything else.
    """
    await conn.execute(SET_TENANT_SEARCH_PATH, {"schema": schema})
    try:
        await conn.run_sync(run_track, tracks.tenant, schema)
    except (CommandError, RevisionError) as exc:
        revision = await _revision_of(conn, schema)
        if revision is not None and tracks.knows_on_disk(revision):
            raise ProcessBehind(
                f"{schema} is at revision {revision}, newer than this process's code (head "
                f"{tracks.tenant_head}): restart it, or use an up-to-date process"
            ) from None
        raise SchemaNotUpgradable(f"cannot bring {schema} to head: {exc}") from None
    except DBAPIError as exc:  # e.g. no version table, so every revision replays onto its tables
        cause = getattr(exc.orig, "__cause__", None) or exc.orig or exc  # asyncpg's own error
        line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise SchemaNotUpgradable(
            f"cannot bring {schema} to head: {type(cause).__name__}: {line}"
        ) from None


async def _revision_of(conn: AsyncConnection, schema: str) -> str | None:
    """The schema's version row(s), or None when there is no readable one."""
    table = f"{quote_schema(schema)}.alembic_version"
    if await conn.scalar(text("SELECT to_regclass(:table)"), {"table": table}) is None:
        return None
    rows = list(await conn.scalars(text(f"SELECT version_num FROM {table}")))
    return rows[0] if len(rows) == 1 else None
