"""Pure ASGI middleware: tenant header -> registry -> key check -> scope["state"]["tenant"]."""

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from tenancy import problems
from tenancy.keys import key_matches
from tenancy.naming import is_valid_slug
from tenancy.runtime import STATE_KEY

_BEARER = b"bearer "
_MAX_HEADER = 64


class TenantMiddleware:
    """Admits a request to a tenant's routes only with that tenant's valid API key.

    Paths under `public_prefixes` (health, docs, admin) pass through untouched. The tenant
    directory comes from the lifespan state (`Tenancy.lifespan_state()`).
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
        if scope["type"] != "http" or scope["path"].startswith(self.public_prefixes):
            await self.app(scope, receive, send)
            return

        slug_raw = token_raw = None
        for name, value in scope["headers"]:
            if name == self.header:
                slug_raw = value
            elif name == b"authorization":
                token_raw = value

        slug = _ascii(slug_raw)
        if slug is None or not is_valid_slug(slug):
            await problems.invalid_tenant_header(self.header_name).response()(scope, receive, send)
            return

        state = scope["state"]
        tenant = await state[STATE_KEY].directory.get(slug)
        token = _bearer_token(token_raw)
        if not key_matches(token, tenant.key_hashes if tenant else {}) or tenant is None:
            await problems.unauthorized().response(headers={"WWW-Authenticate": "Bearer"})(
                scope, receive, send
            )
            return
        if not tenant.is_active:
            await problems.tenant_suspended().response()(scope, receive, send)
            return

        state["tenant"] = tenant
        await self.app(scope, receive, send)


def _ascii(raw: bytes | None) -> str | None:
    if raw is None or len(raw) > _MAX_HEADER:
        return None
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        return None


def _bearer_token(raw: bytes | None) -> str | None:
    if raw is None or len(raw) > 256 or raw[:7].lower() != _BEARER:
        return None
    try:
        return raw[7:].decode("ascii").strip()
    except UnicodeDecodeError:
        return None
