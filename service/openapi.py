"""What /docs and /openapi.json say about the service: intro, tags, who may call what."""

from fastapi import FastAPI

from tenancy.openapi import (
    OpenAPI,
    OpenAPIStep,
    operations,
    postprocess_openapi,
    problems_as_problem_json,
    security_schemes,
    tenant_security,
)

ADMIN_SCHEME = "AdminToken"

DESCRIPTION = """
A multi-tenant API: every tenant's data lives in its own PostgreSQL schema.

**Try it as a tenant**: click **Authorize**, put your tenant's slug (e.g. `demo`) in
`TenantHeader` and its API key (`tnt_…`, printed by `make run` or `tenantry tenants create`) in
`TenantKey`, then *Try it out* on any `todos`, `users` or `songs` operation.

Every error is `application/problem+json` with a stable `type` URI.
"""

TAGS = [
    {"name": "todos", "description": "A tenant's todos: soft-deleted, listed newest first."},
    {"name": "users", "description": "A tenant's users, listed newest first; email unique."},
    {"name": "songs", "description": "A tenant's songs, listed newest first."},
    {"name": "admin", "description": "Onboarding, with `TENANTRY_ADMIN_TOKEN` (`AdminToken`)."},
    {"name": "health", "description": "Probes for orchestrators; no credentials."},
]


def admin_security(prefix: str) -> OpenAPIStep:
    def step(schema: OpenAPI) -> None:
        security_schemes(schema)[ADMIN_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "The operator's `TENANTRY_ADMIN_TOKEN`.",
        }
        for path, operation in operations(schema):
            if path.startswith(prefix):
                operation["security"] = [{ADMIN_SCHEME: []}]

    return step


def document(app: FastAPI, tenant_header: str, public_prefixes: tuple[str, ...]) -> None:
    postprocess_openapi(
        app,
        tenant_security(tenant_header, public_prefixes),
        admin_security("/admin/"),
        problems_as_problem_json,
    )
