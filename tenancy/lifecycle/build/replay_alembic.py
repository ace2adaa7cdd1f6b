"""Every tenant revision through real Alembic, one by one: the reference for the fast path."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.migrate.tracks import Tracks, run_track


@dataclass(frozen=True)
class ReplayAlembic:
    """What `alembic upgrade head` does to an empty schema, inside the caller's transaction."""

    tracks: Tracks

    async def build(self, conn: AsyncConnection, schema: str) -> None:
        await conn.run_sync(run_track, self.tracks.tenant, schema)
