"""The apps under test: uvicorn factories, configured by TENANTRY_* variables like the service.

- `tenantry`: `service.app.create_app` as shipped.
- `no_tenancy`: the same routers and models with tenancy switched off: one schema (`public`), no
  middleware, no search_path, a plain transaction per request.
- `naive_set`: Tenantry with the classic session-level `SET search_path TO ...` sent as a
  statement of its own (it leaks between pooled connections: measured here, never shipped).
- `set_config_statement`: Tenantry's path before the search_path rode with BEGIN: the bound
  `set_config(..., true)` as a statement, and a round trip, of its own.

The tenant-aware apps answer `GET /__bench/stats` with their registry query count.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from service import health, songs, todos, users
from service.app import create_app
from tenancy.database import create_engine, database_url
from tenancy.dependencies import tenant_session
from tenancy.naming import quote_schema
from tenancy.search_path import ENTER_SCHEMA
from tenancy.settings import TenancySettings

STATS_PATH = "/__bench/stats"
_PLAIN_SESSIONS = "plain_sessions"


class BenchStats:
    """Answers GET /__bench/stats from the tenant directory, in front of everything else."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == STATS_PATH:
            directory = self.app.state.runtime.directory
            response = JSONResponse({"registry_queries": directory.registry_queries})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def tenantry() -> ASGIApp:
    return BenchStats(create_app(TenancySettings()))


async def _naive_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.state.runtime.sessionmaker() as session, session.begin():
        schema = quote_schema(request.state.tenant.schema)
        await session.execute(text(f"SET search_path TO {schema}"))
        yield session


def _tenantry_with(session_dependency: Callable[[Request], AsyncIterator[AsyncSession]]) -> ASGIApp:
    """Tenantry whose tenant_session dependency is replaced by another way to set the schema."""
    app = create_app(TenancySettings())
    app.dependency_overrides[tenant_session] = session_dependency
    return BenchStats(app)


def naive_set() -> ASGIApp:
    return _tenantry_with(_naive_session)


async def _set_config_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.state.runtime.sessionmaker() as session, session.begin():
        await session.execute(ENTER_SCHEMA, {"schema": request.state.tenant.schema})
        yield session


def set_config_statement() -> ASGIApp:
    return _tenantry_with(_set_config_session)


async def _plain_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.state.plain_sessions() as session, session.begin():
        yield session


def no_tenancy() -> FastAPI:
    settings = TenancySettings()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, async_sessionmaker]]:
        engine = create_engine(await database_url(settings), settings)
        try:
            yield {_PLAIN_SESSIONS: async_sessionmaker(engine, expire_on_commit=False)}
        finally:
            await engine.dispose()

    app = FastAPI(title="Tenantry without tenancy", lifespan=lifespan)
    for module in (health, todos, users, songs):
        app.include_router(module.router)
    app.dependency_overrides[tenant_session] = _plain_session
    return app
