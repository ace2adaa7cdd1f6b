"""Fleets for the migrate tests and the benchmark: throwaway databases full of tenants, and
copies of the project's Alembic setup with extra tenant revisions (never in migrations/)."""

import asyncio
import io
import os
import shutil
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.paths import ALEMBIC_INI, PROJECT_ROOT
from tenancy.database import create_engine
from tenancy.lifecycle.onboarding import CreatedTenant, create_tenant
from tenancy.migrate.progress import reporter_for
from tenancy.migrate.results import Summary
from tenancy.migrate.run import RunOptions, migrate_fleet, upgrade_shared_schema
from tenancy.migrate.tracks import Tracks, load_tracks
from tenancy.naming import REGISTRY_SCHEMA, quote_schema
from tenancy.settings import TenancySettings
from tenancy.testing.replay_builders import replayed
from tests.citus_support import create_test_database, drop_test_database
from tests.conftest import throwaway_url

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


def scratch_alembic(folder: Path, revisions: Sequence[Revision]) -> Path:
    """A copy of alembic.ini and migrations/ in folder, plus `revisions`; returns the ini."""
    shutil.copytree(
        PROJECT_ROOT / "migrations",
        folder / "migrations",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    ini = folder / "alembic.ini"
    shutil.copyfile(ALEMBIC_INI, ini)
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
    """A throwaway database with the shared schema at head, and the tenants made in it."""

    url: str
    engine: AsyncEngine
    tenants: list[CreatedTenant]
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
        tracks = load_tracks(ALEMBIC_INI)
        names = iter(f"{prefix}-{n}" for n in range(count))

        async def onboard() -> None:
            for slug in names:
                self.tenants.append(await create_tenant(self.engine, replayed(tracks), slug))

        await asyncio.gather(*(onboard() for _ in range(concurrency)))
        self.tenants.sort(key=lambda tenant: tenant.slug)


@asynccontextmanager
async def throwaway_fleet(url: str, pool_size: int = 4) -> AsyncIterator[Fleet]:
    """A fresh database at `url`; dropped, whatever happens, at the end."""
    await create_test_database(url)
    engine = create_engine(url, TenancySettings(database_url=url, pool_size=pool_size))
    try:
        await upgrade_shared_schema(url, load_tracks(ALEMBIC_INI))
        yield Fleet(url, engine, [])
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


@pytest_asyncio.fixture(scope="session")
async def fleet_database(server_url: str) -> AsyncIterator[str]:
    """One database for every fleet test, its shared schema at head; dropped at the end."""
    url = throwaway_url(server_url, "fleet")
    async with throwaway_fleet(url):
        yield url


@pytest_asyncio.fixture
async def fleet(fleet_database: str) -> AsyncIterator[Fleet]:
    """No tenants to start with; whatever the test made is dropped afterwards."""
    engine = create_engine(fleet_database, TenancySettings(database_url=fleet_database))
    try:
        yield Fleet(fleet_database, engine, [])
    finally:
        await empty_fleet(engine)
        await engine.dispose()


async def revision_of(engine: AsyncEngine, schema: str) -> str | None:
    async with engine.connect() as conn:
        return await conn.scalar(
            text(f"SELECT version_num FROM {quote_schema(schema)}.alembic_version")
        )


async def columns_of(engine: AsyncEngine, schema: str, table: str) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = :schema AND table_name = :table"
            ),
            {"schema": schema, "table": table},
        )
        return {row[0] for row in rows}


CATALOG_QUERIES = {
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               a.attidentity, pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = to_regnamespace(:schema) AND a.attnum > 0
          AND NOT a.attisdropped AND c.relkind = 'r'
    """,
    "constraints": """
        SELECT t.relname, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
        WHERE c.connamespace = to_regnamespace(:schema)
    """,
    "indexes": """
        SELECT tablename, indexname, replace(indexdef, :schema || '.', '')
        FROM pg_indexes WHERE schemaname = :schema
    """,
    "relations": """
        SELECT relname, relkind FROM pg_class WHERE relnamespace = to_regnamespace(:schema)
    """,
}


async def catalog_of(engine: AsyncEngine, schema: str) -> dict[str, set[tuple]]:
    """A schema's tables, columns, constraints, indexes and sequences, with its name left out."""
    async with engine.connect() as conn:
        catalog = {
            name: {tuple(row) for row in await conn.execute(text(query), {"schema": schema})}
            for name, query in CATALOG_QUERIES.items()
        }
    assert catalog["relations"], f"schema {schema} is empty or missing"  # no vacuous comparison
    return catalog
