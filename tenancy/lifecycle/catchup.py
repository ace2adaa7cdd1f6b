"""Bring a schema that comes back (restore, import) up to the tenant track's head, and refuse
to when this process's code is older than what is deployed.

Light to import (onboarding asks `refuse_if_behind`): SQLAlchemy and Alembic come with
`bring_to_head`, where a schema comes back.
"""

from typing import TYPE_CHECKING

from tenancy.lifecycle.errors import LifecycleError, ProcessBehind
from tenancy.naming import quote_schema

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from tenancy.migrate.tracks import Tracks


class SchemaNotUpgradable(LifecycleError):
    """A revision failed on the schema (e.g. no version table: every revision replays onto
    tables that exist)."""


def refuse_if_behind(tracks: "Tracks | None") -> None:
    """Raise ProcessBehind when a deploy put a newer tenant head on disk than the one this
    process loaded with its models: what it would build and stamp is already out of date.
    None: a builder that renders from the disk's revisions as it builds (nothing to compare)."""
    if tracks is None:
        return
    disk_head = tracks.disk_head()
    if disk_head is not None:
        raise ProcessBehind(
            f"this process loaded tenant revisions up to {tracks.tenant_head} but {disk_head} "
            "is deployed: restart it (or use an up-to-date one) before creating or restoring "
            "tenants"
        )


async def bring_to_head(conn: "AsyncConnection", tracks: "Tracks", schema: str) -> None:
    """Real Alembic, in conn's transaction: nothing to do at head, every missing revision else.

    Archived schemas are skipped by `migrate`, and an export may come from older code. A schema
    at a revision this process does not know raises ProcessBehind: newer code wrote it (a deploy
    put it on this disk, or this process runs an older image than the one that migrated), and
    only a process that knows it can bring the schema to head. SchemaNotUpgradable when a
    revision fails on it. Either way the caller's transaction is rolled back with everything.
    """
    from alembic.script.revision import RevisionError  # Alembic only where a schema comes back
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    from tenancy.migrate.tracks import run_track
    from tenancy.search_path import enter_schema

    await conn.run_sync(enter_schema, schema)
    try:
        await conn.run_sync(run_track, tracks.tenant, schema)
    except (CommandError, RevisionError) as exc:
        revision = await _revision_of(conn, schema)
        if revision is None or _knows(tracks, revision):
            raise SchemaNotUpgradable(f"cannot bring {schema} to head: {exc}") from None
        where = (
            "a deploy put it on disk since this process started: restart it"
            if revision is not None and tracks.knows_on_disk(revision)
            else "nor do the revisions on this machine: use a process running the code that "
            "wrote it"
        )
        raise ProcessBehind(
            f"{schema} is at revision {revision}, which this process does not know "
            f"(its head is {tracks.tenant_head}); {where}"
        ) from None
    except DBAPIError as exc:  # e.g. no version table, so every revision replays onto its tables
        cause = getattr(exc.orig, "__cause__", None) or exc.orig or exc  # asyncpg's own error
        line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise SchemaNotUpgradable(
            f"cannot bring {schema} to head: {type(cause).__name__}: {line}"
        ) from None


def _knows(tracks: "Tracks", revision: str) -> bool:
    from tenancy.migrate.targets import UnknownRevision, revision_of

    try:
        revision_of(tracks.tenant, revision)
    except UnknownRevision:
        return False
    return True


async def _revision_of(conn: "AsyncConnection", schema: str) -> str | None:
    """The schema's version row(s), or None when there is no readable one."""
    from sqlalchemy import text

    table = f"{quote_schema(schema)}.alembic_version"
    if await conn.scalar(text("SELECT to_regclass(:table)"), {"table": table}) is None:
        return None
    rows = list(await conn.scalars(text(f"SELECT version_num FROM {table}")))
    return rows[0] if len(rows) == 1 else None
