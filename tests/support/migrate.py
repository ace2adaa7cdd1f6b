"""The migrate tests' fleets (the kit's, tenancy.testing.fleets, on the project's alembic.ini)
and what they look at in a tenant's schema."""

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.paths import ALEMBIC_INI
from tenancy.database import create_engine
from tenancy.naming import quote_schema
from tenancy.settings import TenancySettings
from tenancy.testing import fleets
from tenancy.testing.fleets import Fleet, Revision, empty_fleet, throwaway_fleet
from tenancy.testing.throwaway import throwaway_url


def scratch_alembic(folder: Path, revisions: Sequence[Revision]) -> Path:
    """A copy of the project's alembic.ini and migrations/ in folder, plus `revisions`."""
    return fleets.scratch_alembic(folder, revisions, ALEMBIC_INI)


@pytest_asyncio.fixture(scope="session")
async def fleet_database(server_url: str) -> AsyncIterator[str]:
    """One database for every fleet test, its shared schema at head; dropped at the end."""
    url = throwaway_url(server_url, "fleet")
    async with throwaway_fleet(url, ALEMBIC_INI):
        yield url


@pytest_asyncio.fixture
async def fleet(fleet_database: str) -> AsyncIterator[Fleet]:
    """No tenants to start with; whatever the test made is dropped afterwards."""
    engine = create_engine(fleet_database, TenancySettings(database_url=fleet_database))
    try:
        yield Fleet(fleet_database, engine, [], ALEMBIC_INI)
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
