"""The per-request transaction, with the tenant's schema first on its search_path."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

from tenancy.connection import TenantConnection
from tenancy.naming import checked_schema
from tenancy.search_path import enter_schema

_SCHEMA = "tenantry_schema"
_TAG = "tenantry_tag"
_ARMED = "tenantry_armed_connection"


class TenantSession(Session):
    """A Session whose every transaction begins in the tenant schema named in its info."""


@event.listens_for(TenantSession, "after_begin")
def _enter_tenant_schema(
    session: Session, _transaction: SessionTransaction, connection: Connection
) -> None:
    """Runs as the session takes its connection, before the transaction's first statement.

    On a TenantConnection (engines from `tenancy.database.create_engine`) the search_path rides
    with BEGIN, costing no round trip of its own; on any other connection it is set by the
    bound statement (both forms: tenancy.search_path).
    """
    schema, tag = session.info[_SCHEMA], session.info[_TAG]
    driver = connection.connection.driver_connection
    if issubclass(type(driver), TenantConnection):  # asyncpg's isinstance says yes to any
        driver.search_path_on_begin(schema, tag)
        session.info[_ARMED] = driver
    else:
        enter_schema(connection, schema, tag)


def tenant_session_options(schema: str, tag: str | None = None) -> dict[str, Any]:
    """Keyword arguments for an async_sessionmaker call whose session's every transaction
    begins in schema (checked here: InvalidSchemaName), tagged with tag; the session's
    transaction must end in `disarm`. tenant_transaction is the whole pattern."""
    return {
        "sync_session_class": TenantSession,
        "info": {_SCHEMA: checked_schema(schema), _TAG: tag},
    }


def disarm(session: AsyncSession) -> None:
    """Should no statement have run in the session's transaction, its connection's next BEGIN
    must not carry this tenant's search_path: take it back."""
    armed = session.info.pop(_ARMED, None)
    if armed is not None:
        armed.search_path_on_begin(None)


@asynccontextmanager
async def tenant_transaction(
    sessionmaker: async_sessionmaker[AsyncSession], schema: str, tag: str | None = None
) -> AsyncIterator[AsyncSession]:
    """One transaction in one tenant's schema: commits on success, rolls back on any error.

    A request then costs the same round trips as one without tenancy: BEGIN (with the
    search_path), the handler's statements, COMMIT. `tag` (see tenancy.observability.db_tag)
    is the transaction's application_name, set in the same round trip.
    """
    async with (
        sessionmaker(**tenant_session_options(schema, tag)) as session,
        session.begin(),
    ):
        try:
            yield session
        finally:
            disarm(session)
