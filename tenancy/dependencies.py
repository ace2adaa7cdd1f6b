"""FastAPI dependencies of the request path: the current tenant and its transaction."""

from collections.abc import AsyncIterator

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tenancy.observability.db_tag import request_tag
from tenancy.registry import ResolvedTenant
from tenancy.session import tenant_transaction
from tenancy.state_keys import REQUEST_ID_KEY


def current_tenant(request: Request) -> ResolvedTenant:
    """The tenant TenantMiddleware admitted; absent only on a route it was told to skip."""
    return request.state.tenant


async def tenant_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction, in the tenant's schema; use with Depends(scope="function")
    so that it commits before the response is sent."""
    runtime = request.state.runtime
    tenant = current_tenant(request)
    request_id = getattr(request.state, REQUEST_ID_KEY, None)
    tag = request_tag(runtime.settings.application_name, tenant.slug, request_id)
    async with tenant_transaction(runtime.sessionmaker, tenant.schema, tag) as session:
        yield session
