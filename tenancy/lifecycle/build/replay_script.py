"""Every tenant revision, rendered once by Alembic's offline mode and run as one script."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.lifecycle.build import run_script
from tenancy.migrate.tracks import Tracks


@dataclass(frozen=True)
class ReplayScript:
    """One round trip, but the script (and its run time) grows with every revision ever written."""

    tracks: Tracks

    async def build(self, conn: AsyncConnection, schema: str) -> None:
        from tenancy.migrate.render import cached_sql

        await run_script(conn, cached_sql(self.tracks.tenant, None, self.tracks.tenant_head))
