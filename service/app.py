"""The FastAPI application: create_app() wires tenancy, routers and problem+json errors."""

import gc
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from service import admin, health, metrics, openapi, songs, todos, users
from service.docs_ui import install_docs
from service.paths import ALEMBIC_INI
from tenancy import middleware
from tenancy.database import api_database_url, database_url
from tenancy.middleware.replay import is_transient_conflict
from tenancy.observability.access_log import AccessLog
from tenancy.observability.metrics import ServiceMetrics
from tenancy.problems import Problem
from tenancy.runtime import Runtime
from tenancy.settings import TenancySettings, get_settings
from tenancy.state_keys import REQUEST_ID_KEY

log = logging.getLogger(__name__)

PUBLIC_PREFIXES = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/admin/",
    "/docs",
    "/redoc",
    "/openapi.json",
)


def create_app(settings: TenancySettings | None = None, alembic_ini: Path = ALEMBIC_INI) -> FastAPI:
    """The app; alembic_ini names the revisions it builds tenants at (read once, at start-up,
    with the models already imported: see tenancy.migrate.tracks.Tracks)."""
    settings = settings or get_settings()
    service_metrics = ServiceMetrics(
        tenant_label=settings.metrics_tenant_label,
        registry_cache_seconds=settings.metrics_registry_cache_seconds,
    )
    access_log = AccessLog(settings.access_log_flush_seconds)
    app = FastAPI(
        title="Tenantry",
        version="0.1.0",
        description=openapi.DESCRIPTION,
        openapi_tags=openapi.TAGS,
        swagger_ui_parameters={"persistAuthorization": True},
        docs_url=None,  # install_docs serves both pages with local assets (no CDN)
        redoc_url=None,
        lifespan=_lifespan(settings, service_metrics, access_log, alembic_ini),
    )
    app.state.metrics = service_metrics
    app.state.readiness = health.Readiness(settings.readiness_cache_seconds)
    # the tenant routes first: FastAPI tries routes in order on every request, so the requests
    # that matter most skip matching the health, metrics, admin and documentation routes (no
    # path of one group matches a path of another, so the order changes nothing else). FastAPI
    # adds /openapi.json as it creates the app; _documentation_last moves it behind the rest.
    for module in (todos, users, songs, health, metrics, admin):
        _add_routes(app, module.router)
    install_docs(app)
    _documentation_last(app)
    middleware.install(
        app, settings, PUBLIC_PREFIXES, sinks=[access_log, service_metrics.http.observe]
    )
    _install_problem_handlers(app)
    openapi.document(app, settings.tenant_header, PUBLIC_PREFIXES)
    return app


DOCUMENTATION_PREFIXES = ("/openapi.json", "/docs", "/redoc")


def _documentation_last(app: FastAPI) -> None:
    """The documentation's routes after every other. Starlette tries an app's routes in order
    until one matches, and each route tried costs a request about 10,000 instructions of app
    CPU with FastAPI 0.165 (bench/README.md, issue 17, "This round", item 1): /openapi.json,
    which FastAPI adds first, and the docs pages would otherwise cost every tenant request five
    of them."""
    routes = app.router.routes
    documentation = [r for r in routes if getattr(r, "path", "").startswith(DOCUMENTATION_PREFIXES)]
    routes[:] = [r for r in routes if r not in documentation] + documentation


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    """router's routes declared on the app itself, as `include_router` did before FastAPI 0.16x.

    FastAPI 0.165's `include_router` keeps each router behind a wrapper that every request
    walks (a context object per candidate, scope bookkeeping per router it tries): about 20 µs of
    app CPU per request with six routers (bench/README.md, issue 17). The service's routers
    carry their prefix, tags and responses on each route already and have no router-level
    dependencies, callbacks or defaults, which this checks, so declaring the same routes on the
    app gives the same paths, OpenAPI document and dependency overrides (the app provides them)."""
    if router.dependencies or router.callbacks or router.deprecated:
        raise ValueError(f"router {router.prefix!r}: router-level settings would be lost")
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"{route!r}: only APIRoutes are declared on the app")
        app.router.add_api_route(
            route.path,
            route.endpoint,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=route.tags,
            dependencies=route.dependencies,
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses=route.responses,
            deprecated=route.deprecated,
            methods=route.methods,
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema and router.include_in_schema,
            response_class=route.response_class,
            name=route.name,
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            generate_unique_id_function=route.generate_unique_id_function,
            strict_content_type=route.strict_content_type,
            max_body_size=route.max_body_size,
        )


def _lifespan(
    settings: TenancySettings,
    service_metrics: ServiceMetrics,
    access_log: AccessLog,
    alembic_ini: Path,
):
    """Start the runtime before the first request; on shutdown (after in-flight requests have
    finished, or been cancelled past the shutdown timeout) write the access-log lines still held,
    stop the metrics' view of the pool and dispose of the pool."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Runtime]]:
        runtime = await Runtime.start(
            settings, await api_database_url(settings), alembic_ini, await database_url(settings)
        )
        app.state.runtime = runtime  # for introspection; requests use their own state
        service_metrics.bind(runtime.engine)
        _freeze_start_up()
        try:
            yield runtime.lifespan_state()
        finally:
            # held lines now; lines of requests still ending (cancelled past the shutdown
            # timeout) are written one by one from here on
            access_log.close()
            service_metrics.unbind()
            await runtime.close()

    return lifespan


def _freeze_start_up() -> None:
    """In a process that froze its imports (`tenantry serve`, see service.cli.common.begin_work),
    freeze what start-up built as well (routes, models, the OpenAPI document, the tenant
    directory): no garbage collection walks those objects again, however many tenants the
    directory holds. Elsewhere (tests, other servers) nothing is frozen."""
    if gc.get_freeze_count():
        gc.collect()
        gc.freeze()


def _friendlier(error: Any, request: Request) -> str:
    """Pydantic's message, where it misleads a client said plainly."""
    value = error.get("input")
    if (
        error["type"] == "string_too_short"
        and isinstance(value, str)
        and value
        and not value.strip()
    ):
        return "Must contain a non-space character (surrounding whitespace is ignored)"
    if list(error["loc"]) == ["body"] and error["type"] in ("model_attributes_type", "dict_type"):
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            shown = media_type or "none"
            return f"Send the body as a JSON object with Content-Type: application/json ({shown})"
    return error["msg"]


def allowed_methods(request: Request) -> list[str]:
    """Every method the OpenAPI document gives this path: Starlette's 405 names only the first
    route matching the path, and FastAPI makes one route per method."""
    path = request.url.path
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        if _path_pattern(template).fullmatch(path):
            methods |= {method.upper() for method in operations if method.upper() in HTTP_METHODS}
    if not methods:  # routes left out of the document (/, /docs, /redoc, /metrics)
        for route in request.app.routes:
            scope = {"type": "http", "path": path, "root_path": "", "method": ""}
            if isinstance(route, Route) and route.matches(scope)[0] is not Match.NONE:
                methods |= set(route.methods or ())
    return sorted(methods)


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


@lru_cache(maxsize=256)
def _path_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


def _install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def problem(_request: Request, exc: Problem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e["loc"]), "msg": _friendlier(e, _request), "type": e["type"]}
            for e in exc.errors()
        ]
        return Problem(422, "validation-error", "Request validation failed").response(errors=errors)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = {400: "invalid-body", 404: "not-found", 405: "method-not-allowed"}.get(
            exc.status_code, "http-error"
        )
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return Problem(exc.status_code, kind, str(exc.detail)).response(headers=headers)

    @app.exception_handler(PoolTimeout)
    async def busy(_request: Request, exc: PoolTimeout) -> JSONResponse:
        """Every pooled connection stayed in use for pool_timeout seconds: a defined 503 that
        tells the client when to try again, not an internal error."""
        detail = "No database connection became free in time; try again shortly"
        return Problem(503, "busy", detail).response(headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        """Answered outside RequestObserver (by ServerErrorMiddleware), so it echoes the id.
        A pool timeout raised in a middleware (a registry lookup) lands here too: still busy; so
        does a deadlock or serialization failure that its one replay met again.

        Every answer from here says `Connection: close`: ServerErrorMiddleware raises the error
        again once it has sent it, and uvicorn then closes the connection, so a client that kept
        it for its next request would meet a reset instead."""
        closing = {"Connection": "close"}
        if isinstance(exc, PoolTimeout):
            detail = "No database connection became free in time; try again shortly"
            return Problem(503, "busy", detail).response(headers={"Retry-After": "1", **closing})
        request_id = getattr(request.state, REQUEST_ID_KEY, None)
        fields = {"fields": {"request_id": request_id}}
        if is_transient_conflict(exc):  # a second deadlock or serialization failure in a row
            log.warning("transaction aborted by a conflict twice in a row: 503", extra=fields)
            detail = "The database aborted this request's transaction in a conflict; try again"
            return Problem(503, "busy", detail).response(headers={"Retry-After": "1", **closing})
        log.exception("unhandled error", exc_info=exc, extra=fields)
        headers = {"X-Request-ID": request_id, **closing} if request_id else closing
        return Problem(500, "internal-error", "Internal server error").response(headers=headers)
