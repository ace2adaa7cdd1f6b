"""asyncpg connections whose BEGIN carries the tenant's search_path: one round trip, not two.

asyncpg starts every transaction with the simple query `BEGIN;` (SQLAlchemy's asyncpg dialect
sends it lazily, just before the transaction's first statement). Appending
`SET LOCAL search_path TO "tenant_x";` to that same query sets the schema in the round trip that
opens the transaction. `SET LOCAL` ends with the transaction exactly as
`set_config('search_path', :schema, true)` does; the simple query protocol has no bound
parameters, so the name goes through `quote_schema`, which only admits checked tenant schemas.
"""

from typing import Any

import asyncpg

from tenancy.naming import quote_schema
from tenancy.observability.db_tag import quote_tag


class TenantConnection(asyncpg.Connection):
    """An asyncpg connection that can be told the search_path of its next transaction."""

    __slots__ = ("_begin_suffix",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._begin_suffix = ""

    def search_path_on_begin(self, schema: str | None, tag: str | None = None) -> None:
        """Arm the next BEGIN with this tenant schema (and application_name tag); None disarms."""
        suffix = ""
        if schema:
            suffix = f" SET LOCAL search_path TO {quote_schema(schema)};"
            if tag:
                suffix += f" SET LOCAL application_name TO {quote_tag(tag)};"
        self._begin_suffix = suffix

    async def execute(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109 (asyncpg's own signature)
    ) -> str:
        suffix = self._begin_suffix
        if not suffix or args or not query.startswith("BEGIN"):
            return await super().execute(query, *args, timeout=timeout)
        self._begin_suffix = ""
        try:
            return await super().execute(query + suffix, timeout=timeout)
        except BaseException:
            # BEGIN may have succeeded before the SET failed or was cancelled: never hand out a
            # connection in that state; a closed connection is discarded by the pool.
            self.terminate()
            raise
