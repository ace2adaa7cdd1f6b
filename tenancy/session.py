"""The per-request transaction, with the tenant's schema as its only search_path."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tenancy.naming import checked_schema
from tenancy.observability.db_tag import SET_TENANT_SEARCH_PATH_AND_TAG

SET_TENANT_SEARCH_PATH = text("SELECT set_config('search_path', :schema, true)")
"""Transaction-scoped (`is_local = true`) and bound: it ends with the transaction, always."""


@asynccontextmanager
async def tenant_transaction(
    sessionmaker: async_sessionmaker[AsyncSession], schema: str, tag: str | None = None
) -> AsyncIterator[AsyncSession]:
    """One transaction in one tenant's schema: commits on success, rolls back on any error.

    `tag` (see tenancy.observability.db_tag) is the transaction's application_name.
    """
    async with sessionmaker() as session, session.begin():
        if tag is None:
            await session.execute(SET_TENANT_SEARCH_PATH, {"schema": checked_schema(schema)})
        else:
            params = {"schema": checked_schema(schema), "tag": tag}
            await session.execute(SET_TENANT_SEARCH_PATH_AND_TAG, params)
        yield session
