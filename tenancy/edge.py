"""The HTTP edge: how uvicorn is run so that request heads are bounded in bytes, count and time.

What uvicorn 0.54 offers, and what it does not:

- `http="httptools"` (uvicorn's default whenever httptools is installed, as with uvicorn[standard])
  is the fast parser (llhttp), but it has no limit at all: llhttp enforces no header size or
  count, and uvicorn appends every header to a list (100,000 headers, or one 8 MB header, are
  accepted; unfinished heads are buffered without bound).
- `http="h11"` with `h11_max_incomplete_event_size` caps the bytes of a head, but h11 is pure
  Python: it cost Tenantry about 50 to 100 µs of CPU per request more than httptools with this
  protocol (bench/README.md, "The edge alone").
- No uvicorn setting bounds the *time* a head may take: `timeout_keep_alive` is reset by every
  byte received, so one byte every few seconds keeps a connection open forever (slowloris), and
  no setting bounds the number of open connections (`limit_concurrency` answers 503 only once a
  head is complete).

So Tenantry runs uvicorn with EdgeProtocol, a subclass of uvicorn's HttpToolsProtocol that adds
the three bounds at the server layer, around the parser rather than inside it:

- **bytes**: while a head is awaited, the bytes received are counted before they reach the
  parser; past max_header_bytes without a head being complete, the answer is 431 and the
  connection is closed. The count starts again where the parser reports a request's end; the
  rest of the socket read that ended it is not counted, so an unfinished head holds at most
  max_header_bytes plus one socket read (256 KiB). Pipelined requests are each counted alone.
- **time**: a deadline for each request head, from the connection's start (or the end of the
  previous response) to the end of the next head, not reset by bytes arriving: 408 if part of a
  head arrived, then close.
- **connections**: the connection past max_connections is reset at once.

Refusals are problem+json like every other error. Memory held by unfinished heads is thus at most
about max_connections x (max_header_bytes + 256 KiB), each for at most header_timeout seconds.
The count of header lines that did arrive is checked in the app
(tenancy.middleware.header_guard.HeaderGuard, 431).

A reverse proxy in front still has to bound what uvicorn cannot see: connections per client
address, request rate per address, and slow *bodies* (see README, "The request edge").
"""

import asyncio
import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tenancy.problems import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from tenancy.settings import TenancySettings

log = logging.getLogger(__name__)

_STATUS_LINES = {
    400: b"HTTP/1.1 400 Bad Request\r\n",
    408: b"HTTP/1.1 408 Request Timeout\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
}
_PROBLEMS = {
    400: ("malformed-request", "Malformed HTTP request"),
    408: ("request-timeout", "The request head did not arrive in time"),
    431: ("request-head-too-large", "Request line and headers too large"),
}


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a byte cap and a deadline per request head, and a cap
    on open connections.

    Class attributes, set by `edge_protocol()`: header_timeout (seconds), max_connections,
    max_header_bytes (bytes of request line and headers).
    """

    header_timeout: float = 10.0
    max_connections: int = 2048
    max_header_bytes: int = 16384

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._awaiting_head = True
        self._head_bytes = 0
        self._heads_complete = 0

    # -- a cap on open connections ---------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.debug("over %d open connections: closing a new one", self.max_connections)
            transport.abort()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # -- a cap on the bytes of each request head -------------------------------------------

    def data_received(self, data: bytes) -> None:
        if not self._awaiting_head:
            super().data_received(data)
            return
        room = self.max_header_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        self._head_bytes = self.max_header_bytes
        heads_before = self._heads_complete
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._heads_complete == heads_before:
            detail = f"Send at most {self.max_header_bytes} bytes of request line and headers."
            self._answer(431, detail)
            self.transport.close()
            return
        self.data_received(data[room:])

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._heads_complete += 1
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._awaiting_head = True
        self._head_bytes = 0
        super().on_message_complete()

    # -- a deadline for each request head --------------------------------------------------

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._awaiting_head and not self.transport.is_closing():
            self._arm()

    def _arm(self) -> None:
        """From the moment a head began to be awaited; not reset by bytes arriving, unlike
        uvicorn's keep-alive timer."""
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _too_slow(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or not self._awaiting_head:
            return
        if self._head_bytes:
            self._answer(408, f"Send the request line and headers within {self.header_timeout} s.")
        self.transport.close()

    # -- answers ---------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """uvicorn calls this when httptools cannot parse the request: problem+json 400."""
        self._answer(400, msg)
        self.transport.close()

    def _answer(self, status: int, detail: str) -> None:
        """A problem+json answer, unless a response is already under way (then only close)."""
        if self.cycle is not None and not self.cycle.response_complete:
            return
        kind, title = _PROBLEMS[status]
        body = json.dumps(
            {"type": PROBLEM_BASE + kind, "title": title, "status": status, "detail": detail}
        ).encode()
        head = (
            b"content-type: " + PROBLEM_MEDIA_TYPE.encode() + b"\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n"
        )
        self.transport.write(_STATUS_LINES[status] + head + body)


def edge_protocol(
    header_timeout: float, max_connections: int, max_header_bytes: int
) -> type[EdgeProtocol]:
    """An EdgeProtocol class with these bounds (uvicorn instantiates it per connection)."""
    return type(
        "EdgeProtocol",
        (EdgeProtocol,),
        {
            "header_timeout": header_timeout,
            "max_connections": max_connections,
            "max_header_bytes": max_header_bytes,
        },
    )


def uvicorn_options(settings: TenancySettings) -> dict[str, Any]:
    """Keyword arguments for uvicorn.run / uvicorn.Config that bound the request edge."""
    return {
        "http": edge_protocol(
            settings.header_timeout, settings.max_connections, settings.max_header_bytes
        ),
        "ws": "none",  # no WebSocket routes: an Upgrade is served as plain HTTP
        "timeout_keep_alive": 5,
    }
