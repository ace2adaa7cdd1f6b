"""Fleets for the migrate tests and the benchmarks: throwaway databases full of tenants, and
copies of an Alembic setup with extra tenant revisions (never in the project's migrations/).

The project's alembic.ini is the caller's to pass in (`ini`); the revisions below are written
against the shipped template's tenant track (its first revision, its `todos` table)."""

import asyncio
import io
import os
import shutil
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.database import create_engine
from tenancy.lifecycle.onboarding import CreatedTenant, create_tenant
from tenancy.migrate.progress import reporter_for
from tenancy.migrate.results import Summary
from tenancy.migrate.run import RunOptions, migrate_fleet, upgrade_shared_schema
from tenancy.migrate.tracks import Tracks, load_tracks
from tenancy.naming import REGISTRY_SCHEMA, quote_schema
from tenancy.settings import TenancySettings
from tenancy.testing.replay_builders import replayed
from tenancy.testing.throwaway import create_test_database, drop_test_database

PROJECT_HEAD = "0001"


@dataclass(frozen=True)
class Revision:
    """A tenant revision to write into a scratch script directory."""

    id: str
    down: str
    upgrade: str
    downgrade: str
    module_extra: str = ""


ADD_PRIORITY = Revision(
    "0002",
    PROJECT_HEAD,
    'op.add_column("todos", sa.Column("priority", sa.Integer(), nullable=True))',
    'op.drop_column("todos", "priority")',
)

SLOW_ADD_PRIORITY = Revision(
    "0002",
    PROJECT_HEAD,
    ADD_PRIORITY.upgrade + '\n    op.execute("SELECT pg_sleep(0.03)")',
    ADD_PRIORITY.downgrade,
)

LIVE_BACKFILL = Revision(
    "0003",
    "0002",
    """bind = op.get_bind()
    if "priority" in {c["name"] for c in sa.inspect(bind).get_columns("todos")}:
        op.execute("UPDATE todos SET priority = length(content)")
    op.create_index("ix_todos_priority", "todos", ["priority"])""",
    'op.drop_index("ix_todos_priority", table_name="todos")',
)

_TEMPLATE = '''"""test revision {id}

Revision ID: {id}
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op

revision = "{id}"
down_revision = "{down}"
branch_labels = None
depends_on = None
{module_extra}

def upgrade() -> None:
    {upgrade}


def downgrade() -> None:
    {downgrade}
'''


def scratch_alembic(folder: Path, revisions: Sequence[Revision], ini: Path) -> Path:
    """A copy of `ini` and the migrations/ beside it in folder, plus `revisions`; returns the
    copy's ini."""
    shutil.copytree(
        ini.parent / "migrations",
        folder / "migrations",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    source, ini = ini, folder / "alembic.ini"
    shutil.copyfile(source, ini)
    for revision in revisions:
        add_revision(ini, revision)
    return ini


def add_revision(ini: Path, revision: Revision) -> Path:
    """Write one more tenant revision into the scratch copy next to `ini` (a deploy, as a
    process that already loaded its revisions sees it); returns the file."""
    path = ini.parent / "migrations" / "versions" / f"{revision.id}_test.py"
    path.write_text(_TEMPLATE.format(**vars(revision)))
    return path


@dataclass
class Fleet:
    """A throwaway database with the shared schema at head, and the tenants made in it; `ini` is
    the Alembic setup whose tenant track new tenants are built from."""

    url: str
    engine: AsyncEngine
    tenants: list[CreatedTenant]
    ini: Path
    log: io.StringIO = field(default_factory=io.StringIO)

    def env(self, ini: Path) -> dict[str, str]:
        """Environment for a `tenantry` or `alembic` subprocess working on this fleet."""
        return {
            **os.environ,
            "TENANTRY_DATABASE_URL": self.url,
            "TENANTRY_ALEMBIC_INI": str(ini),
        }

    async def migrate(self, tracks: Tracks, **options: object) -> Summary:
        """`tenantry migrate` in process, its plain-text report kept in `self.log`."""
        self.log = io.StringIO()
        return await migrate_fleet(self.url, tracks, RunOptions(**options), reporter_for(self.log))

    async def add_tenants(self, prefix: str, count: int, concurrency: int = 4) -> None:
        """`count` tenants at the project's head, created by `concurrency` onboardings at once."""
        tracks = load_tracks(self.ini)
        names = iter(f"{prefix}-{n}" for n in range(count))

        async def onboard() -> None:
            for slug in names:
                self.tenants.append(await create_tenant(self.engine, replayed(tracks), slug))

        await asyncio.gather(*(onboard() for _ in range(concurrency)))
        self.tenants.sort(key=lambda tenant: tenant.slug)


@asynccontextmanager
async def throwaway_fleet(url: str, ini: Path, pool_size: int = 4) -> AsyncIterator[Fleet]:
    """A fresh database at `url`, its shared schema at `ini`'s head; dropped, whatever happens,
    at the end."""
    await create_test_database(url)
    engine = create_engine(url, TenancySettings(database_url=url, pool_size=pool_size))
    try:
        await upgrade_shared_schema(url, load_tracks(ini))
        yield Fleet(url, engine, [], ini)
    finally:
        await engine.dispose()
        await drop_test_database(url)


async def empty_fleet(engine: AsyncEngine) -> None:
    """Drop every tenant schema and registry row: the next test starts from no tenants, without
    the cost of a new database (dropping one forces a checkpoint)."""
    async with engine.begin() as conn:
        schemas = await conn.scalars(
            text(r"SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\_%'")
        )
        for schema in list(schemas):
            await conn.execute(text(f"DROP SCHEMA {quote_schema(schema)} CASCADE"))
        await conn.execute(text(f"DELETE FROM {REGISTRY_SCHEMA}.tenants"))
