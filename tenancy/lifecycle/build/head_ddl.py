"""The fast path: the head schema's DDL, rendered once from the tenant models, then stamped.

A new tenant needs the schema as it is at head, not the story of how it got there: the models'
`create_all` DDL (tables, sequences, indexes, enum types and any DDL attached to them with
`event.listen(..., "after_create", DDL(...))`) followed by Alembic's own offline rendering of
`stamp head`. The script's size does not depend on how many revisions exist.
`tests/lifecycle/test_onboarding_identity.py` proves the result equals running every revision.

`HeadDDL` renders with the tracks a long-lived process (the API) has loaded anyway. `CachedHeadDDL`
is for a process that creates one tenant and exits (`tenantry tenants create`): the stamp, the
only part that needs Alembic, comes from a file beside the revisions that is rewritten whenever
they change (tenancy.lifecycle.build.stamp_cache), so such a process imports no Alembic at all.
"""

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import MetaData, create_mock_engine
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.base import Executable

from tenancy.lifecycle.build import run_script
from tenancy.migrate.tracks import Tracks

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

_DIALECT_URL = "postgresql+asyncpg://"


@dataclass(frozen=True)
class HeadDDL:
    """Build from `metadata` (the tenant models; they name no schema) and stamp `tracks`' head."""

    tracks: Tracks
    metadata: MetaData

    def script(self) -> str:
        """The whole script, rendered on first use and cached for the life of the process."""
        return head_script(self.metadata, self.tracks.tenant, self.tracks.tenant_head)

    async def build(self, conn: AsyncConnection, schema: str) -> None:
        await run_script(conn, self.script())


@dataclass(frozen=True)
class CachedHeadDDL:
    """The same script as HeadDDL, from the alembic.ini naming the tracks: Alembic is loaded only
    when the tenant track's revisions changed since the stamp was last cached."""

    alembic_ini: Path
    metadata: MetaData

    @property
    def tracks(self) -> None:
        """No loaded tracks: it stamps the head of the revisions on disk as it builds, in a
        process that loaded its models just before, so no deploy can have left it behind."""
        return None

    def script(self) -> str:
        from tenancy.lifecycle.build.stamp_cache import cached_stamp_sql

        return create_all_cached(self.metadata) + cached_stamp_sql(self.alembic_ini)

    async def build(self, conn: AsyncConnection, schema: str) -> None:
        await run_script(conn, self.script())


@lru_cache(maxsize=16)
def head_script(metadata: MetaData, script: "ScriptDirectory", head: str) -> str:
    return create_all_sql(metadata) + stamp_sql(script, head)


@lru_cache(maxsize=16)
def create_all_cached(metadata: MetaData) -> str:
    return create_all_sql(metadata)


def create_all_sql(metadata: MetaData) -> str:
    """What metadata.create_all() would send to PostgreSQL, as one script."""
    statements: list[str] = []

    def record(ddl: Executable, *_args: object, **_kwargs: object) -> None:
        statements.append(str(ddl.compile(dialect=engine.dialect)).strip())

    engine = create_mock_engine(_DIALECT_URL, record)
    metadata.create_all(engine, checkfirst=False)
    return "".join(f"{statement};\n" for statement in statements)


def stamp_sql(script: "ScriptDirectory", head: str) -> str:
    """Alembic's offline `stamp head` from an empty schema: its version table, then the row."""
    from tenancy.migrate.render import offline_sql

    return offline_sql(script, lambda rev, _context: script._stamp_revs(head, rev), None, head)
