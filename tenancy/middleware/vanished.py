"""Pure ASGI: a request admitted to a tenant whose schema vanished meanwhile never gets a 500.

TenantMiddleware admits a request from the process's tenant cache. Between that moment and the
request's queries the tenant may be archived (its schema renamed), purged, or its schema dropped
by hand; NOTIFY drops the cached copy within milliseconds, but a request already admitted then
fails with "relation ... does not exist" (42P01) or "schema ... does not exist" (3F000).

Such a failure, before the response started, leaves nothing behind (the request's one
transaction was rolled back), so the request is admitted again from a fresh registry read:

- no such tenant any more, or its key no longer valid (archived: keys revoked) -> 401
  `unauthorized`, what the same request sent now gets;
- suspended meanwhile -> 403 `tenant-suspended`;
- still admitted but its schema is gone (dropped by hand) -> 503 `tenant-unavailable`;
- still admitted and its schema is there (restored meanwhile) -> the request runs once more.

A second failure of the same kind means the schema is there but a table the code needs is not
(a tenant migrated down, or behind a revision that adds a table): 503 `tenant-unavailable`
saying so, and an error in the log (see `tenantry migrate status --verify`); never a 500.
"""

import logging
from typing import TYPE_CHECKING

from sqlalchemy import text
from starlette.types import ASGIApp, Receive, Scope, Send

from tenancy import problems
from tenancy.keys import key_matches
from tenancy.middleware.replay import first_attempt, wraps_error
from tenancy.registry import ResolvedTenant
from tenancy.state_keys import RUNTIME_KEY, TENANT_KEY

if TYPE_CHECKING:  # the runtime's module builds engines and loads the migration tracks
    from tenancy.runtime import Runtime

log = logging.getLogger(__name__)

VANISHED_SQLSTATES = frozenset({"42P01", "3F000"})
"""undefined_table and invalid_schema_name."""
TABLES_MISSING = (
    "Its tables are not at the revision this service needs (a migration is behind or failed);"
    " retry later."
)
_SCHEMA_EXISTS = text("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = :schema)")


class VanishedSchemas:
    """Answers an admitted request whose tenant's schema or tables vanished mid-flight with the
    answer a request sent now would get (401/403/503 problem+json), or runs it once more."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tenant = scope.get("state", {}).get(TENANT_KEY) if scope["type"] == "http" else None
        if tenant is None:
            await self.app(scope, receive, send)
            return
        again = await first_attempt(self.app, scope, receive, send, is_vanished_relation)
        if again is None:
            return
        log.warning(
            "tenant %s: its schema or tables vanished; admitting the request again", tenant.slug
        )
        answer = await readmit(scope, tenant)
        if answer is not None:
            await answer.response(headers=_headers_of(answer))(scope, receive, send)
            return
        if await first_attempt(self.app, scope, again, send, is_vanished_relation) is None:
            return
        log.error(
            "tenant %s: its schema is there but a table this code needs is not (a tenant at an"
            " older revision, or a table dropped): 503; see `tenantry migrate status --verify`",
            tenant.slug,
        )
        unavailable = problems.tenant_unavailable(TABLES_MISSING)
        await unavailable.response(headers=_headers_of(unavailable))(scope, receive, send)


async def readmit(scope: Scope, admitted: ResolvedTenant) -> problems.Problem | None:
    """The refusal a request sent now would get, or None when it would be admitted again (the
    fresh tenant replaces the stale one in the request's state)."""
    runtime: Runtime = scope["state"][RUNTIME_KEY]
    await runtime.directory.reload(admitted.slug)  # a fresh registry read, not the map's copy
    fresh = await runtime.directory.get(admitted.slug)
    if fresh is None or not key_matches(_bearer_token(scope), fresh.key_hashes):
        return problems.unauthorized()
    if not fresh.is_active:
        return problems.tenant_suspended()
    async with runtime.engine.connect() as conn:
        exists = await conn.scalar(_SCHEMA_EXISTS, {"schema": fresh.schema})
    if not exists:
        return problems.tenant_unavailable()
    scope["state"][TENANT_KEY] = fresh
    return None


def is_vanished_relation(exc: BaseException) -> bool:
    """True when exc, or an error it wraps, is PostgreSQL's undefined table or schema."""
    return wraps_error(exc, lambda error: getattr(error, "sqlstate", None) in VANISHED_SQLSTATES)


def _bearer_token(scope: Scope) -> str | None:
    """The last Authorization header's bearer token, as TenantMiddleware read it."""
    token = None
    for name, value in scope["headers"]:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            token = value[7:].decode("latin-1").strip()
    return token


def _headers_of(problem: problems.Problem) -> dict[str, str] | None:
    if problem.status == 401:
        return {"WWW-Authenticate": "Bearer"}
    if problem.status == 503:
        return {"Retry-After": "1"}
    return None
