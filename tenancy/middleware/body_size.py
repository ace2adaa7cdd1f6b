"""Pure ASGI middleware: request bodies above a size cap are refused with 413 problem+json.

The declared Content-Length is checked first (nothing is read); a body without one (chunked) or
one that lies is counted as it streams in, and the request is cut off once it passes the cap. An
HTTP/1.x request with neither Content-Length nor Transfer-Encoding has no body (RFC 9112, 6.3):
it passes unwrapped.
"""

import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenancy.problems import Problem


def body_too_large(max_bytes: int) -> Problem:
    return Problem(
        413, "body-too-large", "Request body too large", f"Send at most {max_bytes} bytes."
    )


class _BodyTooLarge(Exception):
    """Raised into the app from receive() once the streamed body passes the cap."""


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is None and scope.get("http_version") in _LENGTH_IN_HEADERS:
            # no Content-Length, no Transfer-Encoding: no body (RFC 9112, 6.3)
            await self.app(scope, receive, send)
            return
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0
        exceeded = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded and not response_started:
                return  # whatever the app answers to a cut-off body, the answer is 413
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_BodyTooLarge):  # the app may also have turned it into a 400
            await self.app(scope, counting_receive, guarded_send)
        if exceeded and not response_started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = body_too_large(self.max_bytes).response(headers={"Connection": "close"})
        await response(scope, receive, send)


_LENGTH_IN_HEADERS = frozenset({"1.0", "1.1"})
"""HTTP versions whose request bodies are framed by Content-Length or Transfer-Encoding alone
(HTTP/2 and later frame a body without either: it is always counted)."""


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length header (0 when unparsable: left to the server, and the body counted);
    0 for a body sent chunked (Transfer-Encoding); None when the request declares no body at
    all, so that nothing wraps the receive of the requests that have none (GET)."""
    declared = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
        if name == b"transfer-encoding":
            declared = 0
    return declared
