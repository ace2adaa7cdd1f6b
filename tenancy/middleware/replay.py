"""Pure ASGI: replay a request once when a schema change invalidated a cached statement, or
when PostgreSQL aborted its transaction to resolve a deadlock or a serialization conflict.

asyncpg caches prepared statements per connection. When a migration changes a table (say, a
column's type), the next execution of a statement prepared before it fails with
`InvalidCachedStatementError`; SQLAlchemy's asyncpg dialect then clears its caches but cannot
retry, because the error aborted the transaction. Every request runs in one transaction that
commits before the response starts, so a request that failed this way before its response
started changed nothing and can simply run again: the replay prepares fresh statements.

The same holds for `deadlock_detected` (40P01) and `serialization_failure` (40001): PostgreSQL
rolled the request's one transaction back so that another could finish (a lifecycle change
racing the request, for instance), and its documented remedy is to run the transaction again.
One replay per request; a second failure reaches the app's error handler (503 `busy`).
"""

from collections.abc import Callable

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STALE_STATEMENT_ERRORS = (
    asyncpg.exceptions.InvalidCachedStatementError,
    asyncpg.exceptions.OutdatedSchemaCacheError,
    AsyncAdapt_asyncpg_dbapi.InvalidCachedStatementError,
)
"""asyncpg's own, and the one SQLAlchemy's asyncpg dialect wraps it in (under `.orig`)."""

TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})
"""deadlock_detected and serialization_failure: the transaction was rolled back; run it again."""


class ReplayStaleStatements:
    """Runs a request again, once, if a stale prepared statement, a deadlock or a serialization
    failure failed it before any output."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        again = await first_attempt(self.app, scope, receive, send, is_worth_replaying)
        if again is not None:
            await self.app(scope, again, send)


async def first_attempt(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    retryable: Callable[[BaseException], bool],
) -> Receive | None:
    """Run app once, recording the body it reads. None when it finished; when it raised a
    `retryable` error before sending anything, a receive that replays the body (the request's
    one transaction was rolled back, so running it again is safe); anything else is raised."""
    received: list[Message] = []
    started = False

    async def recording_receive() -> Message:
        message = await receive()
        received.append(message)
        return message

    async def watching_send(message: Message) -> None:
        nonlocal started
        started = True
        await send(message)

    try:
        await app(scope, recording_receive, watching_send)
    except Exception as exc:
        if started or not retryable(exc):
            raise
        return replaying(received, receive)
    return None


def replaying(received: list[Message], receive: Receive) -> Receive:
    """The body the first attempt read, then the live channel (for disconnects)."""
    pending = list(received)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def is_worth_replaying(exc: BaseException) -> bool:
    """A stale statement, a deadlock or a serialization failure, in exc or an error it wraps."""
    return is_stale_statement(exc) or is_transient_conflict(exc)


def is_transient_conflict(exc: BaseException) -> bool:
    """True when exc, or an error it wraps, is a deadlock or a serialization failure."""
    return wraps_error(exc, lambda error: getattr(error, "sqlstate", None) in TRANSIENT_SQLSTATES)


def is_stale_statement(exc: BaseException) -> bool:
    """True when exc, or an error it wraps, says a cached statement went stale."""
    return wraps_error(exc, lambda error: isinstance(error, STALE_STATEMENT_ERRORS))


def wraps_error(exc: BaseException, matches: Callable[[BaseException], bool]) -> bool:
    """True when exc or an error it wraps (cause, context, SQLAlchemy's `.orig`) matches."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if matches(current):
            return True
        stack += [current.__cause__, current.__context__, getattr(current, "orig", None)]
    return False
