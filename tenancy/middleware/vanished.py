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

The same holds for every other way a tenant's tables can differ from what this code expects: a
column that is not there (a tenant behind a revision that adds one: 42703), a type that is not
there (42704), a column of another type (42804, 42846), a function or operator that does not
exist for the tenant's types (42883), a row its tables refuse though the models admit it (a
tenant ahead: a NOT NULL column this code does not fill, 23502; a unique index or a check it
does not know, 23505, 23514;
a narrower column, 22001; an enum without the value, 22P02), or rows that no longer fit the
models they are read into (a column of another type read back: pydantic's ValidationError from
a handler's `model_validate`, or FastAPI's ResponseValidationError; both raised inside the
session dependency's scope, so the transaction is rolled back). These are errors about the
schema, not about the request: the request is admitted again and run once more (a restore may
have brought the schema back meanwhile), then answered 503 `tenant-unavailable`. If this code
itself names a column no tenant has, every tenant gets that 503 and the log names the error.
"""

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi.exceptions import ResponseValidationError
from pydantic import ValidationError
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
SHAPE_SQLSTATES = frozenset(
    {"42703", "42704", "42804", "42846", "42883", "23502", "23505", "23514", "22001", "22P02"}
)
"""The tenant's tables are there, in another shape than this code's models. Behind them:
undefined_column, undefined_object, datatype_mismatch, cannot_coerce, undefined_function. Ahead
of them, or changed by hand: not_null_violation (a NOT NULL column this code does not fill),
unique_violation (a unique index the models do not know: a route answers its own constraints'
violations itself, as POST /users answers 409 for a taken email), check_violation (a check the
models do not know), string_data_right_truncation (a column
narrower than the model's), invalid_text_representation (an enum value the tenant's type does
not have). The API validates every input against the models first (422), so a row the database
still refuses for one of these reasons does not fit that tenant's tables."""
SCHEMA_SQLSTATES = VANISHED_SQLSTATES | SHAPE_SQLSTATES
ROWS_NOT_FITTING = (ValidationError, ResponseValidationError)
"""Rows read back that do not fit the models (a request's own body is RequestValidationError,
answered 422 before any of this)."""
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
            "tenant %s: its schema or tables vanished or differ from this code's; admitting the"
            " request again",
            tenant.slug,
        )
        answer = await readmit(scope, tenant)
        if answer is not None:
            await answer.response(headers=_headers_of(answer))(scope, receive, send)
            return
        failure: list[BaseException] = []
        if await first_attempt(self.app, scope, again, send, _noting(failure)) is None:
            return
        log.error(
            "tenant %s: its schema is there but its tables are not what this code needs (a"
            " tenant at an older revision, a table or column dropped or changed: %s): 503; see"
            " `tenantry migrate status --verify`",
            tenant.slug,
            _schema_error(failure[0]) if failure else "?",
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
    """True when exc, or an error it wraps, says the tenant's schema, a table, or a column or
    type this code needs is not there, or has another type (SCHEMA_SQLSTATES)."""
    return isinstance(exc, ROWS_NOT_FITTING) or wraps_error(
        exc, lambda error: getattr(error, "sqlstate", None) in SCHEMA_SQLSTATES
    )


def _noting(failure: list[BaseException]) -> Callable[[BaseException], bool]:
    """is_vanished_relation, keeping the error it recognised (for the log line)."""

    def retryable(exc: BaseException) -> bool:
        if is_vanished_relation(exc):
            failure.append(exc)
            return True
        return False

    return retryable


def _schema_error(exc: BaseException) -> str:
    """The PostgreSQL error's SQLSTATE and message (`42703 column todos.priority does not
    exist`), found in exc or an error it wraps."""
    if isinstance(exc, ROWS_NOT_FITTING):
        first = next(iter(exc.errors()), {})
        return f"rows do not fit the models: {first.get('loc')} {first.get('msg')}"
    found: list[BaseException] = []

    def keep(error: BaseException) -> bool:
        if getattr(error, "sqlstate", None) in SCHEMA_SQLSTATES:
            found.append(error)
            return True
        return False

    wraps_error(exc, keep)
    error = found[0] if found else exc
    message = str(getattr(error, "message", None) or error).splitlines()[0]
    return f"{getattr(error, 'sqlstate', '?')} {message}"


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
