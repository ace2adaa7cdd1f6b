"""The HTTP edge: how uvicorn is run so that request heads are bounded in bytes, count and time.

What uvicorn 0.54 offers, and what it does not:

- `http="httptools"` (uvicorn's default whenever httptools is installed, as with uvicorn[standard])
  has no limit at all: llhttp enforces no header size or count, and uvicorn appends every header
  to a list (100,000 headers, or one 8 MB header, are accepted; unfinished heads are buffered
  without bound).
- `http="h11"` with `h11_max_incomplete_event_size` is the server's own cap: h11 refuses a head
  that grows past it (RemoteProtocolError, status hint 431) before buffering more. It bounds the
  bytes, hence also the count (at least 4 bytes a line), of what an unfinished head can hold.
- No uvicorn setting bounds the *time* a head may take: `timeout_keep_alive` is reset by every
  byte received, so one byte every few seconds keeps a connection open forever (slowloris), and
  no setting bounds the number of open connections (`limit_concurrency` answers 503 only once a
  head is complete).

So Tenantry runs uvicorn with h11 and that cap, and with EdgeProtocol, a subclass of uvicorn's
H11Protocol that adds the two missing bounds at the server layer, without parsing anything:
a deadline for each request head (from the connection's start, or from the end of the previous
response, to the end of the next head: 408, then close) and a cap on open connections (the
connection past it is reset at once). Refusals are problem+json like every other error. Memory
held by unfinished heads is thus at most about max_connections x (max_header_bytes + one socket
read of 256 KiB), and each for at most header_timeout seconds. The count of header lines that did
arrive is checked in the app (tenancy.headers.HeaderGuard, 431).

A reverse proxy in front still has to bound what uvicorn cannot see: connections per client
address, request rate per address, and slow *bodies* (see README, "The request edge").
"""

import asyncio
import json
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from tenancy.problems import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from tenancy.settings import TenancySettings

log = logging.getLogger(__name__)

_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
_PROBLEMS = {
    400: ("malformed-request", "Malformed HTTP request"),
    408: ("request-timeout", "The request head did not arrive in time"),
    431: ("request-head-too-large", "Request line and headers too large"),
}


class _Connection(h11.Connection):
    """h11's server connection, remembering the status hint of the last protocol error (431 for
    a head past max_incomplete_event_size) so the answer can say which it was."""

    error_status = 400

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error_status = exc.error_status_hint
            raise


class EdgeProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline per request head and a cap on open connections.

    Class attributes, set by `edge_protocol()`: header_timeout (seconds), max_connections.
    """

    header_timeout: float = 10.0
    max_connections: int = 2048

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _Connection(h11.SERVER, self.config.h11_max_incomplete_event_size or 16384)
        self._head_deadline: asyncio.TimerHandle | None = None

    # -- a cap on open connections ---------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.debug("over %d open connections: closing a new one", self.max_connections)
            transport.abort()
            return
        self._track_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # -- a deadline for each request head --------------------------------------------------

    def handle_events(self) -> None:
        super().handle_events()
        self._track_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._track_head()

    def _track_head(self) -> None:
        """Armed while a head is awaited (the client's state is IDLE), from the moment it began
        to be awaited; not reset by bytes arriving, unlike uvicorn's keep-alive timer."""
        if self.transport.is_closing():
            self._disarm()
        elif self.conn.their_state is h11.IDLE:
            if self._head_deadline is None:
                self._head_deadline = self.loop.call_later(self.header_timeout, self._too_slow)
        else:
            self._disarm()

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _too_slow(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        buffered, _closed = self.conn.trailing_data
        if buffered and self.conn.our_state is h11.IDLE:
            self._answer(408, f"Send the request line and headers within {self.header_timeout} s.")
        self.transport.close()

    # -- answers ---------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """uvicorn calls this on any h11 protocol error; answer problem+json with its status."""
        status = self.conn.error_status if self.conn.error_status in _PROBLEMS else 400
        detail = (
            f"Send at most {self.config.h11_max_incomplete_event_size} bytes of request line "
            "and headers."
            if status == 431
            else msg
        )
        self._answer(status, detail)
        self.transport.close()

    def _answer(self, status: int, detail: str) -> None:
        kind, title = _PROBLEMS[status]
        body = json.dumps(
            {"type": PROBLEM_BASE + kind, "title": title, "status": status, "detail": detail}
        ).encode()
        headers = [
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        try:
            response = h11.Response(status_code=status, headers=headers, reason=_REASONS[status])
            self.transport.write(self.conn.send(response) + self.conn.send(h11.Data(data=body)))
            self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            pass  # a response was already under way: just close


def edge_protocol(header_timeout: float, max_connections: int) -> type[EdgeProtocol]:
    """An EdgeProtocol class with these bounds (uvicorn instantiates it per connection)."""
    return type(
        "EdgeProtocol",
        (EdgeProtocol,),
        {"header_timeout": header_timeout, "max_connections": max_connections},
    )


def uvicorn_options(settings: TenancySettings) -> dict[str, Any]:
    """Keyword arguments for uvicorn.run / uvicorn.Config that bound the request edge."""
    return {
        "http": edge_protocol(settings.header_timeout, settings.max_connections),
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "ws": "none",  # no WebSocket routes: an Upgrade is served as plain HTTP
        "timeout_keep_alive": 5,
    }
