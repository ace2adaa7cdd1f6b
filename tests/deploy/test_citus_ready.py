"""Tenantry stays ready for Citus schema-based sharding, proven on plain PostgreSQL.

With `citus.enable_schema_based_sharding`, a schema made by `CREATE SCHEMA` becomes a distributed
schema whose tables all live on one node. That asks four things of the code, each checked here
against what PostgreSQL really holds or what the code really sends (Citus's own checks are in
src/backend/distributed/commands/schema_based_sharding.c):

1. no foreign key between a tenant schema and another schema (Citus allows keys out of a
   distributed schema only to reference tables, and none into it from another schema);
2. every sequence, and every column a sequence or identity fills, is bigint: Citus encodes the
   node in sequence values generated on workers, which smaller types cannot hold
   (https://docs.citusdata.com/en/stable/develop/reference_workarounds.html);
3. `CREATE SCHEMA` goes out as a statement of its own, before the first table (Citus refuses
   "cannot create distributed schema and table in a single statement");
4. no statement joins two tenant schemas: requests name none (the search_path rides with
   BEGIN), onboarding and migrations name one; the only exception is the migrate census, whose
   `UNION ALL` of `alembic_version` reads Citus plans leg by leg.
"""

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from asyncpg.connection import LoggedQuery
from sqlalchemy import BigInteger, Column, Engine, ForeignKey, MetaData, Table, event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.app import create_app
from service.models import TenantBase
from tenancy.database import create_engine
from tenancy.lifecycle import transfer
from tenancy.lifecycle.blueprint import TenantBlueprint
from tenancy.lifecycle.onboarding import (
    ONBOARDING_STEPS,
    CreatedTenant,
    Creation,
    create_schema,
    create_tenant,
    run_steps,
)
from tenancy.lifecycle.schema_builders import run_script
from tenancy.migrate.results import Outcome
from tenancy.migrate.tracks import Tracks, load_tracks
from tenancy.naming import TENANT_SCHEMA_PREFIX, is_tenant_schema, quote_schema
from tenancy.search_path import ENTER_SCHEMA_ASYNCPG
from tenancy.settings import TenancySettings
from tenancy.testing.fleets import ADD_PRIORITY, LIVE_BACKFILL, Fleet
from tenancy.testing.replay_builders import ReplayAlembic, ReplayScript
from tenancy.testing.servers import client
from tests.support.common import running_server
from tests.support.migrate import scratch_alembic

# --- what the code sends ----------------------------------------------------------------------


@dataclass
class SentStatements:
    """Every SQL string sent to PostgreSQL while recording, in the order it was sent.

    Two taps, because neither sees everything: asyncpg's query logger sees simple-query scripts,
    BEGIN/COMMIT and raw asyncpg work (census, migrate lanes), but not the prepared statements
    SQLAlchemy runs; SQLAlchemy's before_cursor_execute sees those. asyncpg hands its records to
    `loop.call_soon`, so the SQLAlchemy tap queues its own the same way: one FIFO keeps the order.
    """

    texts: list[str] = field(default_factory=list)

    def from_asyncpg(self, record: LoggedQuery) -> None:
        self.texts.append(record.query)

    def from_sqlalchemy(self, _conn, _cursor, statement: str, *_more: object) -> None:
        asyncio.get_running_loop().call_soon(self.texts.append, statement)

    async def settled(self) -> list[str]:
        await asyncio.sleep(0)  # let the queued records land
        return list(self.texts)


@contextmanager
def recording() -> Iterator[SentStatements]:
    """Record what connections opened from here on send (every engine; raw asyncpg too)."""
    sent = SentStatements()
    connect = asyncpg.connect
    from_sqlalchemy = sent.from_sqlalchemy  # one object, for event.remove

    async def connect_and_log(*args: object, **kwargs: object) -> asyncpg.Connection:
        conn = await connect(*args, **kwargs)
        conn.add_query_logger(sent.from_asyncpg)
        return conn

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asyncpg, "connect", connect_and_log)
        event.listen(Engine, "before_cursor_execute", from_sqlalchemy)
        try:
            yield sent
        finally:
            event.remove(Engine, "before_cursor_execute", from_sqlalchemy)


@pytest.fixture
def sent() -> Iterator[SentStatements]:
    with recording() as statements:
        yield statements


@pytest.fixture
async def fresh_engine(settings: TenancySettings) -> AsyncIterator[AsyncEngine]:
    """An engine whose connections are opened during the test, so a recording sees them."""
    engine = create_engine(settings.database_url or "", settings)
    yield engine
    await engine.dispose()


async def tenant_schemas(engine: AsyncEngine) -> frozenset[str]:
    async with engine.connect() as conn:
        names = await conn.scalars(text("SELECT nspname FROM pg_namespace"))
        return frozenset(name for name in names if is_tenant_schema(name))


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def schemas_named(statement: str, schemas: frozenset[str]) -> set[str]:
    """The tenant schemas a statement names, quoted or not, qualifier or literal.

    Matched against the schemas that exist, so a column such as `tenant_id` is not a schema.
    """
    return set(_WORD.findall(statement)) & schemas


_SCHEMA_NAME = TENANT_SCHEMA_PREFIX + r"[a-z][a-z0-9_]{1,39}"
_CENSUS_LEG = rf'SELECT \d+, version_num FROM "{_SCHEMA_NAME}"\.alembic_version'
CENSUS_READ = re.compile(rf"{_CENSUS_LEG}(?: UNION ALL {_CENSUS_LEG})*")
"""tenancy/migrate/census.py `_read_chunk`: the one statement allowed to name many schemas."""

ARMED_BEGIN = re.compile(
    rf'BEGIN[^;]*; RESET ALL; RESET ROLE; SET LOCAL search_path TO "{_SCHEMA_NAME}", extensions;'
)
"""tenancy/connection.py: the request's BEGIN, carrying its tenant's search_path."""


def cross_tenant_statements(statements: Sequence[str], schemas: frozenset[str]) -> list[str]:
    """Statements naming two or more tenant schemas, but for the census read."""
    return [
        s for s in statements if len(schemas_named(s, schemas)) > 1 and not CENSUS_READ.fullmatch(s)
    ]


_CREATES_SCHEMA = re.compile(r"\bCREATE\s+SCHEMA\b", re.IGNORECASE)
_CREATES_TABLE = re.compile(r"\bCREATE\s+(?:UNLOGGED\s+)?TABLE\b", re.IGNORECASE)


def schema_creation_problems(statements: Sequence[str], schema: str) -> list[str]:
    """Why these statements would not make `schema` distributed before its tables exist."""
    alone = re.compile(rf'CREATE SCHEMA (?:"{schema}"|{schema})')
    creating = [i for i, s in enumerate(statements) if _CREATES_SCHEMA.search(s)]
    tables = [i for i, s in enumerate(statements) if _CREATES_TABLE.search(s)]
    problems = [f"{len(creating)} statements create a schema"] if len(creating) != 1 else []
    problems += [
        f"not a statement of its own: {statements[i][:200]!r}"
        for i in creating
        if not alone.fullmatch(statements[i].strip().removesuffix(";").strip())
    ]
    if not tables:
        problems.append("no statement creates a table")
    elif creating and creating[0] > tables[0]:
        problems.append("a table is created before the schema")
    return problems


# --- what PostgreSQL holds ---------------------------------------------------------------------

FOREIGN_KEYS_LEAVING = text(
    """
    SELECT c.conname, tn.nspname || '.' || t.relname, rn.nspname || '.' || r.relname
    FROM pg_constraint c
    JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
    JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
    WHERE c.contype = 'f' AND tn.oid <> rn.oid
      AND to_regnamespace(:schema) IN (tn.oid, rn.oid)
    """
)
"""Foreign keys from the schema to another one, or into it from another one."""

SEQUENCES = text(
    """
    SELECT c.relname, format_type(s.seqtypid, NULL)
    FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
    WHERE c.relnamespace = to_regnamespace(:schema)
    """
)
SEQUENCE_FED_COLUMNS = text(
    """
    SELECT t.relname, a.attname, format_type(a.atttypid, a.atttypmod)
    FROM pg_attribute a JOIN pg_class t ON t.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE t.relnamespace = to_regnamespace(:schema) AND t.relkind IN ('r', 'p')
      AND a.attnum > 0 AND NOT a.attisdropped
      AND (a.attidentity <> ''
           OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%'
           OR EXISTS (SELECT 1 FROM pg_depend dep JOIN pg_class seq ON seq.oid = dep.objid
                      WHERE dep.classid = 'pg_class'::regclass AND seq.relkind = 'S'
                        AND dep.refclassid = 'pg_class'::regclass AND dep.refobjid = a.attrelid
                        AND dep.refobjsubid = a.attnum AND dep.deptype IN ('a', 'i')))
    """
)
"""Identity columns, serial-style defaults, and columns owning a sequence."""


async def foreign_keys_leaving(conn: AsyncConnection, schema: str) -> set[tuple[str, str, str]]:
    return {tuple(row) for row in await conn.execute(FOREIGN_KEYS_LEAVING, {"schema": schema})}


async def sequence_types(conn: AsyncConnection, schema: str) -> dict[str, str]:
    return {name: kind for name, kind in await conn.execute(SEQUENCES, {"schema": schema})}


async def sequence_fed_columns(conn: AsyncConnection, schema: str) -> dict[str, str]:
    rows = await conn.execute(SEQUENCE_FED_COLUMNS, {"schema": schema})
    return {f"{table}.{column}": kind for table, column, kind in rows}


def not_bigint(types: dict[str, str]) -> dict[str, str]:
    return {name: kind for name, kind in types.items() if kind != "bigint"}


def schema_qualified_foreign_keys(metadata: MetaData) -> list[str]:
    """Model foreign keys aimed at a table in a named schema (tenant tables name none)."""
    return [
        f"{table.name} -> {fk.target_fullname}"
        for table in metadata.tables.values()
        for fk in table.foreign_keys
        if fk.target_fullname.count(".") >= 2
    ]


# --- tenants onboarded by each way of building a schema, while recording ----------------------

BUILDERS: dict[str, Callable[[TenantBlueprint, Tracks], TenantBlueprint]] = {
    "head_ddl": lambda blueprint, _tracks: blueprint,
    "replay_script": lambda _blueprint, tracks: TenantBlueprint(ReplayScript(tracks)),
    "replay_alembic": lambda _blueprint, tracks: TenantBlueprint(ReplayAlembic(tracks)),
}


@dataclass(frozen=True)
class Onboarded:
    tenant: CreatedTenant
    statements: list[str]


@pytest.fixture(scope="module", params=sorted(BUILDERS))
async def onboarded(
    request: pytest.FixtureRequest,
    settings: TenancySettings,
    blueprint: TenantBlueprint,
    tracks: Tracks,
) -> Onboarded:
    """A tenant created through create_tenant by one builder, and everything that sent."""
    built_by = BUILDERS[request.param](blueprint, tracks)
    with recording() as sent:
        engine = create_engine(settings.database_url or "", settings)
        try:
            tenant = await create_tenant(engine, built_by, "c-" + secrets.token_hex(5))
        finally:
            await engine.dispose()
        return Onboarded(tenant, await sent.settled())


# --- 1. foreign keys stay inside the tenant's schema -------------------------------------------


async def test_no_foreign_key_crosses_the_tenant_schema(
    engine: AsyncEngine, onboarded: Onboarded
) -> None:
    async with engine.connect() as conn:
        assert await foreign_keys_leaving(conn, onboarded.tenant.schema) == set()


def test_no_model_foreign_key_names_a_schema() -> None:
    assert TenantBase.metadata.tables, "no tenant models to check"
    assert [t.name for t in TenantBase.metadata.tables.values() if t.schema is not None] == []
    assert schema_qualified_foreign_keys(TenantBase.metadata) == []


@pytest.mark.negative_control
@pytest.mark.single_server(
    "Citus refuses the broken key itself ('cannot create foreign key constraint since relations"
    " are not colocated'): the negative control cannot build what it catches"
)
async def test_negative_control_a_foreign_key_into_the_registry_is_caught(
    engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    """A same-schema key passes; one to `tenantry.tenants` does not, in the catalog and models."""
    schema = quote_schema(tenant.schema)
    async with engine.connect() as conn, conn.begin():
        await conn.execute(text(f"CREATE TABLE {schema}.lists (id bigint PRIMARY KEY)"))
        await conn.execute(
            text(
                f"CREATE TABLE {schema}.items (id bigint PRIMARY KEY,"
                f" list_id bigint REFERENCES {schema}.lists,"
                " owner_id bigint CONSTRAINT items_owner REFERENCES tenantry.tenants)"
            )
        )
        found = await foreign_keys_leaving(conn, tenant.schema)
        await conn.rollback()
    assert found == {("items_owner", f"{tenant.schema}.items", "tenantry.tenants")}

    broken = MetaData()
    Table("lists", broken, Column("id", BigInteger, primary_key=True))
    Table(
        "items",
        broken,
        Column("list_id", BigInteger, ForeignKey("lists.id")),
        Column("owner_id", BigInteger, ForeignKey("tenantry.tenants.id")),
    )
    assert schema_qualified_foreign_keys(broken) == ["items -> tenantry.tenants.id"]


# --- 2. ids are bigint -------------------------------------------------------------------------


async def test_every_sequence_and_every_column_it_feeds_is_bigint(
    engine: AsyncEngine, onboarded: Onboarded
) -> None:
    async with engine.connect() as conn:
        sequences = await sequence_types(conn, onboarded.tenant.schema)
        columns = await sequence_fed_columns(conn, onboarded.tenant.schema)
    assert {"todos.id", "users.id", "songs.id"} <= columns.keys()
    assert len(sequences) >= 3
    assert not_bigint(sequences) == {}
    assert not_bigint(columns) == {}


@pytest.mark.negative_control
async def test_negative_control_integer_identity_and_serial_columns_are_caught(
    engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    schema = quote_schema(tenant.schema)
    async with engine.connect() as conn, conn.begin():
        await conn.execute(
            text(f"CREATE TABLE {schema}.tickets (id integer GENERATED BY DEFAULT AS IDENTITY)")
        )
        await conn.execute(text(f"CREATE TABLE {schema}.legacy (id serial, n bigint)"))
        sequences = await sequence_types(conn, tenant.schema)
        columns = await sequence_fed_columns(conn, tenant.schema)
        await conn.rollback()
    assert not_bigint(sequences) == {"tickets_id_seq": "integer", "legacy_id_seq": "integer"}
    assert not_bigint(columns) == {"tickets.id": "integer", "legacy.id": "integer"}


# --- 3. CREATE SCHEMA alone, before the tables -------------------------------------------------


async def test_onboarding_sends_create_schema_alone_before_any_table(
    onboarded: Onboarded,
) -> None:
    assert schema_creation_problems(onboarded.statements, onboarded.tenant.schema) == []


async def test_an_import_restores_create_schema_alone_before_any_table(
    settings: TenancySettings,
    engine: AsyncEngine,
    tracks: Tracks,
    tenant: CreatedTenant,
    new_slug: str,
    tmp_path: Path,
) -> None:
    """An import builds its schema as onboarding does (CREATE SCHEMA alone, then the revisions
    up to the archive's) and only copies rows in: everything it sends is recorded."""
    file = tmp_path / "tenant.dump"
    await transfer.export_tenant(engine, tenant.slug, file)
    with recording() as sent:
        importer = create_engine(settings.database_url or "", settings)
        try:
            copy = await transfer.import_tenant(importer, tracks, file, slug=f"{new_slug}-copy")
        finally:
            await importer.dispose()
        statements = await sent.settled()

    assert copy.schema in await tenant_schemas(engine)
    assert schema_creation_problems(statements, copy.schema) == []


@pytest.mark.negative_control
@pytest.mark.single_server(
    "Citus refuses the broken statement itself ('cannot create distributed schema and table in"
    " a single statement'): the negative control cannot run it"
)
async def test_negative_control_create_schema_with_a_table_element_is_caught(
    fresh_engine: AsyncEngine, blueprint: TenantBlueprint, new_slug: str, sent: SentStatements
) -> None:
    """`CREATE SCHEMA s CREATE TABLE t ...` makes a table in the same statement: caught."""

    async def create_schema_and_a_table(conn: asyncpg.Connection, creation: Creation) -> None:
        await conn.fetchval(ENTER_SCHEMA_ASYNCPG, creation.schema)
        schema = quote_schema(creation.schema)
        await run_script(conn, f"CREATE SCHEMA {schema} CREATE TABLE probe (id bigint)")

    class RolledBack(Exception):
        pass

    async def roll_back(_conn: asyncpg.Connection, _creation: Creation) -> None:
        raise RolledBack

    steps = [create_schema_and_a_table if s is create_schema else s for s in ONBOARDING_STEPS]
    creation = Creation.of(new_slug, blueprint=blueprint)
    with pytest.raises(RolledBack):
        await run_steps(fresh_engine, creation, [*steps, roll_back])
    problems = schema_creation_problems(await sent.settled(), creation.schema)
    assert len(problems) == 1 and problems[0].startswith("not a statement of its own")


# --- 4. no statement joins two tenant schemas --------------------------------------------------


async def test_onboarding_names_no_schema_but_its_own(
    engine: AsyncEngine, onboarded: Onboarded
) -> None:
    schemas = await tenant_schemas(engine)
    named = {frozenset(schemas_named(s, schemas)) for s in onboarded.statements}
    assert named == {frozenset(), frozenset({onboarded.tenant.schema})}


async def test_requests_name_no_tenant_schema_but_in_their_begin(
    settings: TenancySettings,
    engine: AsyncEngine,
    tenant: CreatedTenant,
    other_tenant: CreatedTenant,
    sent: SentStatements,
) -> None:
    async with running_server(create_app(settings)) as base_url:
        for who in (tenant, other_tenant):
            async with client(base_url, who.slug, who.api_key) as http:
                await exercise_every_resource(http)
    statements = await sent.settled()
    schemas = await tenant_schemas(engine)

    begins = [s for s in statements if schemas_named(s, schemas)]
    assert [s for s in begins if not ARMED_BEGIN.match(s)] == []
    assert {frozenset(schemas_named(s, schemas)) for s in begins} == {
        frozenset({tenant.schema}),
        frozenset({other_tenant.schema}),
    }
    for table in ("todos", "users", "songs"):  # the handlers' own statements were seen
        assert any(s.startswith(f"INSERT INTO {table} ") for s in statements), table


async def exercise_every_resource(http: httpx.AsyncClient) -> None:
    """Create, list, read, update and delete through every tenant resource."""
    created = await http.post("/todos", json={"content": "water the plants"})
    assert created.status_code == 201, created.text
    todo = f"/todos/{created.json()['id']}"
    assert (await http.get("/todos")).status_code == 200
    assert (await http.get(todo)).status_code == 200
    assert (await http.put(todo, json={"content": "done"})).status_code == 200
    assert (await http.delete(todo)).status_code == 204
    user = {"email": f"{secrets.token_hex(4)}@example.com", "name": "Ada"}
    assert (await http.post("/users", json=user)).status_code == 201
    assert (await http.get("/users")).status_code == 200
    assert (
        await http.post("/songs", json={"name": "So What", "artist": "Miles"})
    ).status_code == 201
    assert (await http.get("/songs")).status_code == 200


@pytest.fixture(scope="module")
def with_live_step(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alembic.ini of the project plus 0002 (rendered, fast lanes) and 0003 (live context)."""
    return scratch_alembic(tmp_path_factory.mktemp("citus"), [ADD_PRIORITY, LIVE_BACKFILL])


async def test_a_migrate_run_joins_no_tenant_schemas_but_in_the_census(
    fleet: Fleet, with_live_step: Path
) -> None:
    await fleet.add_tenants("m", 3)
    tracks = load_tracks(with_live_step)
    with recording() as sent:
        rendered = await fleet.migrate(tracks, target="0002", concurrency=2)
        live = await fleet.migrate(tracks, concurrency=2)
        statements = await sent.settled()
    assert rendered.count(Outcome.MIGRATED) == 3, fleet.log.getvalue()
    assert live.count(Outcome.MIGRATED) == 3, fleet.log.getvalue()
    schemas = await tenant_schemas(fleet.engine)
    assert schemas == {t.schema for t in fleet.tenants}

    assert cross_tenant_statements(statements, schemas) == []
    census = [s for s in statements if CENSUS_READ.fullmatch(s)]
    assert census and all(schemas_named(s, schemas) == schemas for s in census)
    per_tenant = [s for s in statements if len(schemas_named(s, schemas)) == 1]
    assert per_tenant, "no statement named one tenant: the Alembic contexts were not seen"


@pytest.mark.negative_control
@pytest.mark.single_server(
    "Citus refuses the broken query itself ('the query contains a join that requires"
    " repartitioning'): the negative control cannot run it"
)
async def test_negative_control_a_query_joining_two_tenants_is_caught(
    fresh_engine: AsyncEngine,
    tenant: CreatedTenant,
    other_tenant: CreatedTenant,
    sent: SentStatements,
) -> None:
    """A JOIN across two schemas is caught, and so is a census look-alike with a JOIN leg."""
    one, two = quote_schema(tenant.schema), quote_schema(other_tenant.schema)
    joined = f"SELECT count(*) FROM {one}.todos a JOIN {two}.todos b ON a.id = b.id"
    census_like = (
        f"SELECT 0, version_num FROM {one}.alembic_version UNION ALL SELECT 1, a.version_num"
        f" FROM {two}.alembic_version a JOIN {one}.alembic_version b USING (version_num)"
    )
    census = (
        f"SELECT 0, version_num FROM {one}.alembic_version"
        f" UNION ALL SELECT 1, version_num FROM {two}.alembic_version"
    )
    async with fresh_engine.connect() as conn:
        for query in (joined, census_like, census):
            await conn.execute(text(query))
    statements = await sent.settled()
    schemas = await tenant_schemas(fresh_engine)
    assert cross_tenant_statements(statements, schemas) == [joined, census_like]
