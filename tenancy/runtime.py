"""Everything a running API process holds: engine, sessions, tenant directory and its listener."""

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from tenancy.database import asyncpg_dsn, create_engine
from tenancy.directory import RegistryListener, TenantDirectory
from tenancy.migrate.tracks import Tracks, load_tracks
from tenancy.settings import TenancySettings
from tenancy.state_keys import RUNTIME_KEY


@dataclass
class Runtime:
    settings: TenancySettings
    engine: AsyncEngine
    owner_engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    directory: TenantDirectory
    listener: RegistryListener
    tracks: Tracks

    @classmethod
    async def start(
        cls, settings: TenancySettings, url: str, alembic_ini: Path, owner_url: str | None = None
    ) -> "Runtime":
        """url: the runtime role's (request path); owner_url: the owner's, for onboarding."""
        engine = create_engine(url, settings)
        directory = TenantDirectory(engine, ttl=settings.registry_cache_ttl)
        listener = RegistryListener(
            asyncpg_dsn(settings.listen_database_url or url),
            directory,
            check_seconds=settings.listen_check_seconds,
            application_name=settings.application_name,
        )
        await listener.start()
        return cls(
            settings=settings,
            engine=engine,
            owner_engine=_owner_engine(engine, url, owner_url),
            sessionmaker=async_sessionmaker(engine, expire_on_commit=False),
            directory=directory,
            listener=listener,
            tracks=load_tracks(alembic_ini),
        )

    def lifespan_state(self) -> dict[str, "Runtime"]:
        """Yield this from a lifespan so that every request's state carries the runtime."""
        return {RUNTIME_KEY: self}

    async def close(self) -> None:
        await self.listener.stop()
        await self.engine.dispose()
        await self.owner_engine.dispose()


def _owner_engine(engine: AsyncEngine, url: str, owner_url: str | None) -> AsyncEngine:
    """Onboarding is rare: no pool kept open for the owner; one role for all shares the engine."""
    if owner_url in (None, url):
        return engine
    return create_async_engine(owner_url, poolclass=NullPool)
