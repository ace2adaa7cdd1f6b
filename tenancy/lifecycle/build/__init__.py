"""How a new tenant's tables come to exist: one strategy per module, all interchangeable.

- `head_ddl.HeadDDL`: the head schema's DDL, rendered once from the tenant models, plus Alembic's
  own stamp of the head revision. One script whatever the length of the history: the default.
- `replay_alembic.ReplayAlembic`: every revision through real Alembic, one by one. The reference
  the fast path is proven against, and what `bench/onboarding.py` calls "every migration".
- `replay_script.ReplayScript`: every revision rendered once by Alembic's offline mode and run as
  one script (the project's first onboarding path), for comparison.
"""

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.citus import is_citus_pooled, statements_for
from tenancy.migrate.tracks import Tracks
from tenancy.sql_statements import split_statements


class SchemaBuilder(Protocol):
    """Builds every tenant table at head inside the caller's transaction.

    The schema exists and is the transaction's search_path when build() is called. `tracks` is
    where the head it stamps comes from: onboarding refuses to build when the head on disk has
    moved past it (`catchup.refuse_if_behind`); None for a builder that stamps the head on disk
    as it builds (`head_ddl.CachedHeadDDL`, the CLI's).
    """

    @property
    def tracks(self) -> Tracks | None: ...

    async def build(self, conn: AsyncConnection, schema: str) -> None: ...


async def run_script(conn: AsyncConnection, sql: str) -> None:
    """Several statements in one round trip (simple query protocol), inside conn's transaction.

    On a Citus coordinator, one statement at a time instead (tenancy/citus.py): a script of
    several commands is refused there as soon as it holds an index, a DROP COLUMN, ...
    """
    raw = (await conn.get_raw_connection()).driver_connection
    if not raw.is_in_transaction():
        raise RuntimeError("run_script needs a transaction that has already begun")
    if len(split_statements(sql)) <= 1:
        await raw.execute(sql)
        return
    for statement in statements_for(sql, await is_citus_pooled(conn)):
        await raw.execute(statement)
