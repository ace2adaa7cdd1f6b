"""Extensions in tenant revisions and requests (issue 13, item 6).

Extensions live in the shared `extensions` schema, which every tenant transaction has on its
search_path after the tenant's own schema: a revision can add a CITEXT column and a pg_trgm
index, and requests can use citext's comparison and pg_trgm's `%` and similarity(). A tenant can
use what is there, never create anything in it.
"""

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from tenancy.database import create_engine
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.migrate.results import Outcome
from tenancy.migrate.tracks import load_tracks
from tenancy.naming import EXTENSIONS_SCHEMA
from tenancy.session import tenant_transaction
from tenancy.settings import TenancySettings
from tenancy.testing.fleets import PROJECT_HEAD, Fleet, Revision
from tests.support.migrate import scratch_alembic
from tests.support.project import make_settings

INSTALL = (
    f"CREATE EXTENSION IF NOT EXISTS citext SCHEMA {EXTENSIONS_SCHEMA}",
    f"CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA {EXTENSIONS_SCHEMA}",
)
"""What a shared revision of the user's own runs (both extensions are trusted: the owner role
needs CREATE on the database, no superuser)."""

USE_EXTENSIONS = Revision(
    "0002",
    PROJECT_HEAD,
    'op.execute("ALTER TABLE todos ADD COLUMN handle citext")\n'
    '    op.execute("CREATE INDEX ix_todos_trgm ON todos USING gin (content gin_trgm_ops)")',
    'op.drop_index("ix_todos_trgm", table_name="todos")\n    op.drop_column("todos", "handle")',
)

USE = text(
    "SELECT handle = 'mixed' AS citext_equal, content % 'Hello there' AS trigram_match,"
    " similarity(content, 'hello') > 0.5 AS similar FROM todos"
)


async def install_extensions(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for statement in INSTALL:
            await conn.execute(text(statement))


async def test_a_revision_and_requests_use_extension_types_functions_and_operators(
    fleet: Fleet, tmp_path: Path
) -> None:
    await install_extensions(fleet.engine)
    await fleet.add_tenants("ext", 2)
    tracks = load_tracks(scratch_alembic(tmp_path, [USE_EXTENSIONS]))
    summary = await fleet.migrate(tracks)
    assert summary.count(Outcome.MIGRATED) == 2, fleet.log.getvalue()

    settings = TenancySettings(database_url=fleet.url)
    engine = create_engine(fleet.url, settings)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        for tenant in fleet.tenants:
            async with tenant_transaction(sessions, tenant.schema) as session:
                await session.execute(
                    text("INSERT INTO todos (content, handle) VALUES ('Hello', 'MiXeD')")
                )
                row = (await session.execute(USE)).one()
            assert tuple(row) == (True, True, True)
    finally:
        await engine.dispose()


@pytest.mark.negative_control
async def test_negative_control_without_the_extensions_schema_on_the_path_nothing_resolves(
    fleet: Fleet, tmp_path: Path
) -> None:
    await install_extensions(fleet.engine)
    await fleet.add_tenants("extnc", 1)
    schema = fleet.tenants[0].schema
    async with fleet.engine.begin() as conn:
        await conn.execute(text("SELECT set_config('search_path', :s, true)"), {"s": schema})
        with pytest.raises(DBAPIError, match='type "citext" does not exist'):
            await conn.execute(text("ALTER TABLE todos ADD COLUMN handle citext"))


@pytest.mark.parametrize(
    "statement",
    [
        f"CREATE TABLE {EXTENSIONS_SCHEMA}.todos (id int)",
        f"CREATE FUNCTION {EXTENSIONS_SCHEMA}.lower(text) RETURNS text LANGUAGE sql AS 'SELECT 1'",
        f"CREATE VIEW {EXTENSIONS_SCHEMA}.users AS SELECT 1 AS id",
    ],
)
async def test_a_tenant_cannot_create_anything_in_the_extensions_schema(
    runtime_url: str, database: str, tenant: CreatedTenant, statement: str
) -> None:
    settings = make_settings(runtime_url, owner_database_url=database)
    engine = create_engine(runtime_url, settings)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        with pytest.raises(DBAPIError, match="permission denied for schema extensions"):
            async with tenant_transaction(sessions, tenant.schema) as session:
                await session.execute(text(statement))
    finally:
        await engine.dispose()
