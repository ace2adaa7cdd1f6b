"""The reference strategies the fast path (tenancy/lifecycle/schema_builders/head_ddl.py) is
proven against: every tenant revision replayed, by real Alembic or as one rendered script.

Tests and benchmarks only: `tests/lifecycle/test_onboarding_identity.py` compares what they
build with the head DDL's, and `bench/onboarding.py` times them ("every migration").
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from tenancy.lifecycle.blueprint import TenantBlueprint
from tenancy.lifecycle.schema_builders import run_script
from tenancy.migrate.tracks import Tracks, run_track

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class ReplayAlembic:
    """What `alembic upgrade head` does to an empty schema, inside the caller's transaction
    (on an engine: Alembic needs the SQLAlchemy connection)."""

    tracks: Tracks

    async def build(
        self, conn: asyncpg.Connection, schema: str, sqlalchemy: "AsyncConnection | None"
    ) -> None:
        if sqlalchemy is None:
            raise RuntimeError("ReplayAlembic runs Alembic: create the tenant on an engine")
        await sqlalchemy.run_sync(run_track, self.tracks.tenant, schema)


@dataclass(frozen=True)
class ReplayScript:
    """Every revision rendered once by Alembic's offline mode and run as one script (the
    project's first onboarding path): one round trip, but the script (and its run time) grows
    with every revision ever written."""

    tracks: Tracks

    async def build(
        self, conn: asyncpg.Connection, schema: str, sqlalchemy: "AsyncConnection | None"
    ) -> None:
        from tenancy.migrate.render import cached_sql

        await run_script(conn, cached_sql(self.tracks.tenant, None, self.tracks.tenant_head))


def replayed(tracks: Tracks) -> TenantBlueprint:
    """A blueprint with no models: every revision of `tracks` replayed as one script (for a
    test whose tracks differ from the service's models, e.g. a scratch revision)."""
    return TenantBlueprint(ReplayScript(tracks))
