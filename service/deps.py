"""Dependency aliases for route signatures."""

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from tenancy.dependencies import current_tenant, tenant_session
from tenancy.registry import ResolvedTenant

TenantSession = Annotated[AsyncSession, Depends(tenant_session, scope="function")]
CurrentTenant = Annotated[ResolvedTenant, Depends(current_tenant)]
