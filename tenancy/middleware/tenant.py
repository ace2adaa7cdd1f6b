"""Pure ASGI middleware: tenant header -> registry -> key check -> scope["state"]["tenant"]."""

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from tenancy import problems
from tenancy.keys import key_matches
from tenancy.naming import RESERVED_SLUGS, is_valid_slug
from tenancy.state_keys import RUNTIME_KEY, TENANT_KEY

_BEARER = b"bearer "
_MAX_HEADER = 64


class TenantMiddleware:
    """Admits a request to a tenant's routes only with that tenant's valid API key.

    Paths under `public_prefixes` (health, docs, admin), and `/` itself (it points a browser at
    the docs), pass through untouched. The tenant
    directory comes from the lifespan state (`Runtime.lifespan_state()`).
    """

    def __init__(
        self,
        app: ASGIApp,
        header: str = "X-Tenant-ID",
        public_prefixes: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.header_name = header
        self.header = header.lower().encode("latin-1")
        self.public_prefixes = tuple(public_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path == "/" or path.startswith(self.public_prefixes):
            await self.app(scope, receive, send)
            return

        slug_raw = token_raw = None
        for name, value in scope["headers"]:
            if name == self.header:
                slug_raw = value
            elif name == b"authorization":
                token_raw = value

        why = _malformed(slug_raw)
        if why is not None:
            problem = problems.invalid_tenant_header(self.header_name, why)
            await problem.response()(scope, receive, send)
            return
        slug = slug_raw.decode("ascii")  # type: ignore[union-attr]  # _malformed checked it

        state = scope["state"]
        tenant = await state[RUNTIME_KEY].directory.get(slug)
        token = _bearer_token(token_raw)
        if not key_matches(token, tenant.key_hashes if tenant else {}) or tenant is None:
            await problems.unauthorized().response(headers={"WWW-Authenticate": "Bearer"})(
                scope, receive, send
            )
            return
        if not tenant.is_active:
            await problems.tenant_suspended().response()(scope, receive, send)
            return

        state[TENANT_KEY] = tenant
        await self.app(scope, receive, send)


def _malformed(raw: bytes | None) -> str | None:
    """Why the tenant header is no slug ("is missing", ...), or None when it is one."""
    if raw is None:
        return "is missing"
    if len(raw) > _MAX_HEADER:
        return f"is longer than {_MAX_HEADER} bytes"
    try:
        slug = raw.decode("ascii")
    except UnicodeDecodeError:
        return "is not ASCII"
    if not is_valid_slug(slug):
        if slug in RESERVED_SLUGS:
            return "names a reserved slug"
        return "is not a slug" if slug.strip() else "is empty"
    return None


def _bearer_token(raw: bytes | None) -> str | None:
    if raw is None or len(raw) > 256 or raw[:7].lower() != _BEARER:
        return None
    try:
        return raw[7:].decode("ascii").strip()
    except UnicodeDecodeError:
        return None
