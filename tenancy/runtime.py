"""Everything a running API process holds: engine, sessions, tenant directory and its listener."""

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tenancy.database import asyncpg_dsn, create_engine
from tenancy.directory import RegistryListener, TenantDirectory
from tenancy.migrate.tracks import Tracks, load_tracks
from tenancy.settings import TenancySettings

STATE_KEY = "tenancy"
"""The key of the running Tenancy in the ASGI lifespan state (request.state.tenancy)."""


@dataclass
class Tenancy:
    settings: TenancySettings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    directory: TenantDirectory
    listener: RegistryListener
    tracks: Tracks

    @classmethod
    async def start(cls, settings: TenancySettings, url: str, alembic_ini: Path) -> "Tenancy":
        engine = create_engine(url, settings)
        directory = TenantDirectory(engine, ttl=settings.registry_cache_ttl)
        listener = RegistryListener(asyncpg_dsn(url), directory)
        await listener.start()
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=async_sessionmaker(engine, expire_on_commit=False),
            directory=directory,
            listener=listener,
            tracks=load_tracks(alembic_ini),
        )

    def lifespan_state(self) -> dict[str, "Tenancy"]:
        """Yield this from a lifespan so that every request's state carries the runtime."""
        return {STATE_KEY: self}

    async def close(self) -> None:
        await self.listener.stop()
        await self.engine.dispose()
