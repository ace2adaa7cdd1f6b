"""The request path's pure-ASGI layers, one module each, and `install`, which stacks them.

The order, outermost first (what each layer answers, and with which status):

1. `observer.RequestObserver`: every request gets an id (the client's sane `X-Request-ID`, or a
   new one), echoed in the response; one RequestRecord per request to the sinks (access log,
   metrics), refused requests included. Answers only a request cut off by the shutdown
   (cancelled at `TENANTRY_SHUTDOWN_TIMEOUT` before its response started) -> 503
   `shutting-down`, then lets the cancellation go on.
2. `header_guard.HeaderGuard`: more than `TENANTRY_MAX_HEADERS` header lines -> 431
   `too-many-headers`; the tenant header or `Authorization` sent twice -> 400 `duplicate-header`.
3. `body_size.BodySizeLimit`: a body over `TENANTRY_MAX_BODY_BYTES` (declared, or counted as it
   streams in) -> 413 `body-too-large`.
4. `tenant.TenantMiddleware`: outside the public paths, a tenant header that is no slug -> 400
   `invalid-tenant-header`; unknown tenant or wrong key -> 401 `unauthorized` (the same answer);
   suspended tenant -> 403 `tenant-suspended`; else the tenant goes into the request's state.
5. `rate_limit.RateLimitMiddleware`: the admitted tenant's token bucket is empty -> 429
   `rate-limited` with Retry-After.
6. `vanished.VanishedSchemas`: the admitted tenant's schema or tables vanished mid-flight ->
   what the request sent now gets (401/403/503 `tenant-unavailable`), or the request runs again.
7. `replay.ReplayStaleStatements`: a prepared statement gone stale with a migration, or a
   deadlock or serialization failure -> the route runs once more (no status of its own; a second
   deadlock or serialization failure is answered 503 `busy` by the app).

Below them, outside ASGI, `tenancy.edge` (the server's httptools protocol) bounds request heads
in bytes, time and open connections (431/400/408) before a scope exists.

Callers import each class from its module; this package's namespace holds `install` only.
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from tenancy.middleware.observer import RequestSink
    from tenancy.settings import TenancySettings


def install(
    app: "Starlette",
    settings: "TenancySettings",
    public_prefixes: Iterable[str],
    sinks: Iterable["RequestSink"],
) -> None:
    """Stack the layers on app in the order above (before its first request).

    public_prefixes: paths TenantMiddleware lets through without a tenant; sinks: what each
    RequestRecord goes to.
    """
    # imported here, not at the top: importing one layer's module runs this file, and should not
    # import the other six (replay.py imports asyncpg and SQLAlchemy's dialect)
    from starlette.middleware import Middleware

    from tenancy.middleware.body_size import BodySizeLimit
    from tenancy.middleware.header_guard import HeaderGuard
    from tenancy.middleware.observer import RequestObserver
    from tenancy.middleware.rate_limit import RateLimiter, RateLimitMiddleware
    from tenancy.middleware.replay import ReplayStaleStatements
    from tenancy.middleware.tenant import TenantMiddleware
    from tenancy.middleware.vanished import VanishedSchemas

    outermost_first = [
        Middleware(RequestObserver, sinks=list(sinks)),
        Middleware(
            HeaderGuard,
            identity_headers=(settings.tenant_header, "Authorization"),
            max_headers=settings.max_headers,
        ),
        Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
        Middleware(
            TenantMiddleware, header=settings.tenant_header, public_prefixes=public_prefixes
        ),
        Middleware(
            RateLimitMiddleware,
            limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        ),
        Middleware(VanishedSchemas),
        Middleware(ReplayStaleStatements),
    ]
    for layer in reversed(outermost_first):  # add_middleware puts each outside the ones before
        app.add_middleware(layer.cls, *layer.args, **layer.kwargs)
