"""Pure ASGI middleware: refuse requests whose headers a proxy and the app could read differently.

The server layer (tenancy.edge) already bounds the size of a request head in bytes and the time
it may take to arrive; this checks what did arrive, before anything reads a header:

- more than `max_headers` header lines: 431 `too-many-headers`;
- more than one of the identity headers (the tenant header, `Authorization`): 400
  `duplicate-header`. A proxy that reads the first `X-Tenant-ID` and an app that reads the last
  would disagree about who is calling; refusing both readings closes that gap.
"""

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from tenancy.problems import Problem

DEFAULT_MAX_HEADERS = 100
"""Header lines a request may carry (nginx, Node and hyper default to about this)."""


def too_many_headers(max_headers: int) -> Problem:
    return Problem(
        431,
        "too-many-headers",
        "Too many request headers",
        f"Send at most {max_headers} header lines.",
    )


def duplicate_header(name: str) -> Problem:
    return Problem(
        400,
        "duplicate-header",
        "Identity header sent more than once",
        f"Send the {name} header exactly once.",
    )


class HeaderGuard:
    """Refuses too many header lines (431) and repeated identity headers (400).

    identity_headers: header names (any case) that must appear at most once per request.
    Cost: one pass over scope["headers"] (already lower-cased bytes), no allocation per header.
    """

    def __init__(
        self,
        app: ASGIApp,
        identity_headers: Iterable[str],
        max_headers: int = DEFAULT_MAX_HEADERS,
    ) -> None:
        self.app = app
        self.max_headers = max_headers
        self._names = {name.lower().encode("latin-1"): name for name in identity_headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        problem: Problem | None = None
        if len(headers) > self.max_headers:
            problem = too_many_headers(self.max_headers)
        else:
            seen: set[bytes] = set()
            for name, _value in headers:
                if name in self._names:
                    if name in seen:
                        problem = duplicate_header(self._names[name])
                        break
                    seen.add(name)
        if problem is not None:
            await problem.response(headers={"Connection": "close"})(scope, receive, send)
            return
        await self.app(scope, receive, send)
