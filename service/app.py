"""The FastAPI application: create_app() wires tenancy, routers and problem+json errors."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from service import admin, health, songs, todos, users
from service.paths import ALEMBIC_INI
from tenancy.database import api_database_url, database_url
from tenancy.limits import BodySizeLimit
from tenancy.middleware import TenantMiddleware
from tenancy.problems import Problem
from tenancy.runtime import Tenancy
from tenancy.settings import TenancySettings, get_settings

log = logging.getLogger(__name__)

PUBLIC_PREFIXES = ("/healthz", "/readyz", "/admin/", "/docs", "/redoc", "/openapi.json")


def create_app(settings: TenancySettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Tenancy]]:
        runtime = await Tenancy.start(
            settings, await api_database_url(settings), ALEMBIC_INI, await database_url(settings)
        )
        app.state.tenancy = runtime  # for introspection; requests use their own state
        try:
            yield runtime.lifespan_state()
        finally:
            await runtime.close()

    app = FastAPI(title="Tenantry", version="0.1.0", lifespan=lifespan)
    for module in (health, admin, todos, users, songs):
        app.include_router(module.router)
    app.add_middleware(
        TenantMiddleware,
        header=settings.tenant_header,
        public_prefixes=PUBLIC_PREFIXES,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    _install_problem_handlers(app)
    return app


def _install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def problem(_request: Request, exc: Problem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return Problem(422, "validation-error", "Request validation failed").response(errors=errors)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        kind = {400: "invalid-body", 404: "not-found", 405: "method-not-allowed"}.get(
            exc.status_code, "http-error"
        )
        return Problem(exc.status_code, kind, str(exc.detail)).response(headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return Problem(500, "internal-error", "Internal server error").response()
