"""How a new tenant's tables come to exist: one strategy per module, all interchangeable.

- `head_ddl.HeadDDL`: the head schema's DDL, rendered once from the tenant models, plus Alembic's
  own stamp of the head revision. One script whatever the length of the history: the default.
  `head_ddl.CachedHeadDDL` is the same script cached on disk, for a process that creates one
  tenant and exits (`tenantry tenants create`).
- The reference strategies the fast path is proven against (every revision through real Alembic,
  or rendered as one script) are test and benchmark kit: `tenancy/testing/replay_builders.py`.

A builder runs over the onboarding transaction's plain asyncpg connection; light to import (no
SQLAlchemy, no Alembic).
"""

from typing import TYPE_CHECKING, Protocol

import asyncpg

from tenancy.citus import is_citus_pooled, statements_for
from tenancy.sql_statements import split_statements

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from tenancy.migrate.tracks import Tracks


class SchemaBuilder(Protocol):
    """Builds every tenant table at head inside the caller's transaction.

    The schema exists and is the transaction's search_path when build() is called. `tracks` is
    where the head it stamps comes from: onboarding refuses to build when the head on disk has
    moved past it (`catchup.refuse_if_behind`); None for a builder that stamps the head on disk
    as it builds (`head_ddl.CachedHeadDDL`, the CLI's). `sqlalchemy` is the SQLAlchemy
    connection the transaction belongs to when onboarding runs on an engine (None over a plain
    asyncpg connection): only a builder that runs Alembic itself needs it.
    """

    @property
    def tracks(self) -> "Tracks | None": ...

    async def build(
        self, conn: asyncpg.Connection, schema: str, sqlalchemy: "AsyncConnection | None"
    ) -> None: ...


async def run_script(conn: asyncpg.Connection, sql: str) -> None:
    """Several statements in one round trip (simple query protocol), inside conn's transaction.

    On a Citus coordinator, one statement at a time instead (tenancy/citus.py): a script of
    several commands is refused there as soon as it holds an index, a DROP COLUMN, ...
    """
    if not conn.is_in_transaction():
        raise RuntimeError("run_script needs a transaction that has already begun")
    if len(split_statements(sql)) <= 1:
        await conn.execute(sql)
        return
    for statement in statements_for(sql, await is_citus_pooled(conn)):
        await conn.execute(statement)
