"""The fast path: the head schema's DDL, rendered once from the tenant models, then stamped.

A new tenant needs the schema as it is at head, not the story of how it got there: the models'
`create_all` DDL (tables, sequences, indexes, enum types and any DDL attached to them with
`event.listen(..., "after_create", DDL(...))`) followed by Alembic's own offline rendering of
`stamp head`. The script's size does not depend on how many revisions exist.
`tests/lifecycle/test_onboarding_identity.py` proves the result equals running every revision.

`HeadDDL` renders with the tracks a long-lived process (the API) has loaded anyway. `CachedHeadDDL`
is for a process that creates one tenant and exits (`tenantry tenants create`): the whole script
is kept in a file beside the revisions, named by a digest of everything it is rendered from (the
revisions, alembic.ini, the models' source files, Alembic's and SQLAlchemy's versions;
tenancy.migrate.revision_cache), so such a process with the file in place imports neither
Alembic nor SQLAlchemy, nor the models. Only a cold cache renders: the models' DDL with
SQLAlchemy, the stamp with Alembic (itself cached apart, `stamp_cache`, as models change more
often than revisions do).
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from tenancy.lifecycle.schema_builders import run_script

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory
    from sqlalchemy import MetaData
    from sqlalchemy.ext.asyncio import AsyncConnection

    from tenancy.migrate.tracks import Tracks

_DIALECT_URL = "postgresql+asyncpg://"
HEAD_CACHE_PREFIX = "tenantry-head-"


@dataclass(frozen=True)
class HeadDDL:
    """Build from `metadata` (the tenant models; they name no schema) and stamp `tracks`' head."""

    tracks: "Tracks"
    metadata: "MetaData"

    def script(self) -> str:
        """The whole script, rendered on first use and cached for the life of the process."""
        return head_script(self.metadata, self.tracks.tenant, self.tracks.tenant_head)

    async def build(
        self, conn: asyncpg.Connection, schema: str, sqlalchemy: "AsyncConnection | None"
    ) -> None:
        await run_script(conn, self.script())


@dataclass(frozen=True)
class TenantModels:
    """The tenant models, named without importing them: `load` imports them and returns their
    metadata; `sources` are the files (or folders: every .py file under them) they are defined
    in, which name the cached script together with the revisions."""

    load: Callable[[], "MetaData"]
    sources: tuple[Path, ...]


@dataclass(frozen=True)
class CachedHeadDDL:
    """The same script as HeadDDL, from the alembic.ini naming the tracks, read from disk while
    nothing it is rendered from changed: no SQLAlchemy, no Alembic, no models then."""

    alembic_ini: Path
    models: TenantModels

    @property
    def tracks(self) -> None:
        """No loaded tracks: it stamps the head of the revisions on disk as it builds, with the
        models as they are on disk, so no deploy can have left it behind."""
        return None

    def script(self) -> str:
        return cached_head_script(self.alembic_ini, self.models)

    async def build(
        self, conn: asyncpg.Connection, schema: str, sqlalchemy: "AsyncConnection | None"
    ) -> None:
        await run_script(conn, self.script())


@lru_cache(maxsize=8)
def cached_head_script(alembic_ini: Path, models: TenantModels) -> str:
    from tenancy.migrate.revision_cache import TENANT_SECTION, derived

    def render() -> str:
        from tenancy.lifecycle.schema_builders.stamp_cache import stamp_sql_on_disk

        return create_all_sql(models.load()) + stamp_sql_on_disk(alembic_ini)

    return derived(
        alembic_ini,
        (TENANT_SECTION,),
        HEAD_CACHE_PREFIX,
        ".sql",
        render,
        also=models.sources,
        libraries=("alembic", "sqlalchemy"),
    )


@lru_cache(maxsize=16)
def head_script(metadata: "MetaData", script: "ScriptDirectory", head: str) -> str:
    return create_all_sql(metadata) + stamp_sql(script, head)


def create_all_sql(metadata: "MetaData") -> str:
    """What metadata.create_all() would send to PostgreSQL, as one script."""
    from sqlalchemy import create_mock_engine
    from sqlalchemy.sql.base import Executable

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
