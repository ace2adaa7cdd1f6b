"""Keys of what the ASGI state carries (scope["state"], `request.state.<key>`).

A leaf: no imports, so a middleware that reads the state imports nothing to name a key (the
runtime's module pulls in SQLAlchemy's engine, the tenant directory and the migration tracks).
"""

RUNTIME_KEY = "runtime"
"""The running `tenancy.runtime.Runtime` (lifespan state, so every request's state carries it:
`request.state.runtime`)."""

TENANT_KEY = "tenant"
"""The admitted tenant (a `tenancy.registry.ResolvedTenant`), set by TenantMiddleware."""

REQUEST_ID_KEY = "request_id"
"""The request id, set by RequestObserver (`request.state.request_id`)."""
