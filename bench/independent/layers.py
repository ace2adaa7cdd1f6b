"""Tenantry with one layer taken out at a time, for the per-layer cost table (bench/README.md,
`bench.independent.layer_cost`).

`create_app()` is `service.app.create_app` as shipped, then drops what `BENCH_WITHOUT` names
(comma-separated): each variant differs from the shipped app by that layer only, so the
difference in app CPU per request is what the layer costs. Never shipped; a measuring tool.

- `observer`: RequestObserver (request id, access log, metrics) in all;
- `metrics`: only the metrics sink of RequestObserver (the access log stays);
- `header_guard`, `body_limit`, `rate_limit`, `vanished`, `replay`: that middleware;
- `db_tag`: the per-request `application_name` tag riding with BEGIN (the search_path
  stays);
- `flat_routes`: the service's routes declared on the app (`service.app._add_routes`); without
  it they sit behind `include_router`, as before issue 17's change.
"""

import os
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession

from service import admin, health, metrics, songs, todos, users
from service.app import create_app as create_shipped_app
from tenancy.dependencies import current_tenant, tenant_session
from tenancy.middleware.body_size import BodySizeLimit
from tenancy.middleware.header_guard import HeaderGuard
from tenancy.middleware.observer import RequestObserver
from tenancy.middleware.rate_limit import RateLimitMiddleware
from tenancy.middleware.replay import ReplayStaleStatements
from tenancy.middleware.vanished import VanishedSchemas
from tenancy.session import tenant_transaction

MIDDLEWARE = {
    "observer": RequestObserver,
    "header_guard": HeaderGuard,
    "body_limit": BodySizeLimit,
    "rate_limit": RateLimitMiddleware,
    "vanished": VanishedSchemas,
    "replay": ReplayStaleStatements,
}
LAYERS = (*MIDDLEWARE, "metrics", "db_tag", "flat_routes")


async def _untagged_session(request: Request) -> AsyncIterator[AsyncSession]:
    runtime = request.state.runtime
    async with tenant_transaction(runtime.sessionmaker, current_tenant(request).schema) as session:
        yield session


def without(app: FastAPI, layers: set[str]) -> FastAPI:
    """The app with these layers taken out (before its middleware stack is built)."""
    unknown = layers - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown layer(s): {sorted(unknown)}")
    dropped = tuple(MIDDLEWARE[name] for name in layers if name in MIDDLEWARE)
    app.user_middleware = [m for m in app.user_middleware if m.cls not in dropped]
    if "metrics" in layers:
        for middleware in app.user_middleware:
            if middleware.cls is RequestObserver:
                middleware.kwargs["sinks"] = middleware.kwargs["sinks"][:1]  # the access log
    if "db_tag" in layers:
        app.dependency_overrides[tenant_session] = _untagged_session
    if "flat_routes" in layers:
        _include_routers(app)
    return app


def _include_routers(app: FastAPI) -> None:
    """The service's routes taken off the app and included as routers instead."""
    modules = (todos, users, songs, health, metrics, admin)
    declared = {route.endpoint for module in modules for route in module.router.routes}
    app.router.routes[:] = [
        route for route in app.router.routes if getattr(route, "endpoint", None) not in declared
    ]
    for module in modules:
        app.include_router(module.router)


def create_app() -> FastAPI:
    names = {name for name in os.environ.get("BENCH_WITHOUT", "").split(",") if name}
    return without(create_shipped_app(), names)
