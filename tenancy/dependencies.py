"""FastAPI dependencies of the request path: the current tenant and its transaction."""

from collections.abc import AsyncIterator

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tenancy.observability.db_tag import request_tag
from tenancy.registry import ResolvedTenant
from tenancy.session import disarm, tenant_session_options
from tenancy.state_keys import REQUEST_ID_KEY, RUNTIME_KEY, TENANT_KEY


def current_tenant(request: Request) -> ResolvedTenant:
    """The tenant TenantMiddleware admitted; absent (KeyError) only on a route it was told to
    skip."""
    return request.scope["state"][TENANT_KEY]


async def tenant_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction, in the tenant's schema; use with Depends(scope="function")
    so that it commits before the response is sent.

    `tenant_transaction`'s body written out, not entered: a context manager made of a generator
    inside this generator cost every request about 50,000 instructions (1.8 %; bench/README.md,
    "Instructions per request"); the request's state is read from the scope's dict, not
    through Starlette's State object."""
    state = request.scope["state"]
    runtime, tenant = state[RUNTIME_KEY], state[TENANT_KEY]
    tag = request_tag(runtime.settings.application_name, tenant.slug, state.get(REQUEST_ID_KEY))
    async with (
        runtime.sessionmaker(**tenant_session_options(tenant.schema, tag)) as session,
        session.begin(),
    ):
        try:
            yield session
        finally:
            disarm(session)
