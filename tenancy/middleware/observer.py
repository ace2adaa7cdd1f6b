"""Pure ASGI middleware that measures every HTTP request once and hands the record to sinks.

It wraps TenantMiddleware from outside, so it sees requests that are refused before routing
too; the tenant and the matched route are read from the scope after the inner app returns.

It answers one request itself: one still running when `tenantry serve` reaches
TENANTRY_SHUTDOWN_TIMEOUT after SIGTERM. uvicorn then cancels the request's task; the
cancellation unwinds the layers inside (the transaction is rolled back on the way, or its
connection dropped), and here, before it goes on to uvicorn, a request whose response has not
started is answered 503 `shutting-down` instead of uvicorn's plain-text 500. A response already
under way can only be closed.
"""

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from starlette.routing import Route, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenancy.problems import shutting_down
from tenancy.state_keys import REQUEST_ID_KEY, TENANT_KEY

log = logging.getLogger(__name__)

UNMATCHED_ROUTE = "<unmatched>"
"""The route label of a path no route matches: raw paths would make labels unbounded."""

_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What one request did; nothing from its headers or body but the request id."""

    method: str
    route: str
    status: int
    duration: float
    tenant: str | None
    request_id: str
    ended: float = field(default_factory=time.time)
    """POSIX time (seconds) at which the response ended (or the app raised)."""


RequestSink = Callable[[RequestRecord], None]


def new_request_id() -> str:
    return secrets.token_hex(8)


def cancelled_from_outside() -> bool:
    """Whether the running task has been asked to cancel (under uvicorn, a request task is
    cancelled only at the shutdown timeout), as opposed to a CancelledError that merely came up
    from something it awaited."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class RouteTemplates:
    """Path templates of the matched route (`/todos/{todo_id}`, never the raw path).

    A request refused before routing (a 401 from the tenant middleware), or one the router does
    not label, is looked up among the app's paths, so it still names the route it aimed at.
    """

    def __init__(self) -> None:
        self._documented: list[tuple[re.Pattern[str], str]] | None = None

    def __call__(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            return getattr(route, "path", UNMATCHED_ROUTE)
        if self._documented is None:
            self._documented = self._documented_paths(scope.get("app"))
        path = scope["path"]
        return next((t for regex, t in self._documented if regex.match(path)), UNMATCHED_ROUTE)

    @staticmethod
    def _documented_paths(app: object) -> list[tuple[re.Pattern[str], str]]:
        """The app's own plain routes (/docs, /openapi.json), then every documented path."""
        plain = [
            (route.path_regex, route.path)
            for route in getattr(app, "routes", ())
            if isinstance(route, Route)
        ]
        openapi = getattr(app, "openapi", None)
        paths = openapi().get("paths", {}) if callable(openapi) else {}
        return plain + [(compile_path(template)[0], template) for template in paths]


class RequestObserver:
    """Gives each request an id (the client's `X-Request-ID` when it is sane), echoes it in the
    response, and reports a RequestRecord to every sink once the response is done."""

    def __init__(
        self, app: ASGIApp, sinks: Iterable[RequestSink] = (), header: str = "X-Request-ID"
    ) -> None:
        self.app = app
        self.sinks = tuple(sinks)
        self.header = header.lower().encode("latin-1")
        self.route_template = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        request_id = self._incoming_id(scope) or new_request_id()
        state = scope.setdefault("state", {})
        state[REQUEST_ID_KEY] = request_id
        echoed = (self.header, request_id.encode("ascii"))
        status = 500  # what ServerErrorMiddleware answers when the app raises before responding
        responding = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responding
            if message["type"] == "http.response.start":
                status, responding = message["status"], True
                message = {**message, "headers": [*message.get("headers", ()), echoed]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            if cancelled_from_outside():
                await _answer_cut_off(scope, receive, send_with_id, request_id, responding)
            raise  # never swallowed here: the cancellation goes on to whoever awaits the task
        finally:
            tenant = state.get(TENANT_KEY)
            record = RequestRecord(
                method=scope["method"],
                route=self.route_template(scope),
                status=status,
                duration=time.perf_counter() - started,
                tenant=getattr(tenant, "slug", None),
                request_id=request_id,
                ended=time.time(),
            )
            for sink in self.sinks:
                sink(record)

    def _incoming_id(self, scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == self.header:
                return value.decode("ascii") if _REQUEST_ID.fullmatch(value) else None
        return None


async def _answer_cut_off(
    scope: Scope, receive: Receive, send: Send, request_id: str, responding: bool
) -> None:
    """503 `shutting-down` for a request cut off before its response started, in one warning
    line (not a traceback: see tenancy.observability.log_format); a started one only logged."""
    fields = {"fields": {"request_id": request_id}}
    if responding:
        log.warning("request cut off mid-response by the shutdown timeout", extra=fields)
        return
    log.warning("request cut off by the shutdown timeout: answered 503", extra=fields)
    headers = {"Retry-After": "1", "Connection": "close"}
    await shutting_down().response(headers=headers)(scope, receive, send)
