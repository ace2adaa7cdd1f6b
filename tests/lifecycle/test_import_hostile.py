"""`tenantry tenants import` runs no code from the archive: hostile archives, built the way an
attacker would, are refused and change nothing.

Two kinds of archive: (a) a real `tenantry tenants export` of a tenant schema tampered with extra
objects (functions, a SECURITY DEFINER trigger, a view named `users` reading another tenant, a
rule, a policy, COPY ... TO PROGRAM in a function behind an index or a default, a trigger writing
another tenant's API keys, an extra index, column or table); (b) a whole-database
`pg_dump --format=custom` holding one `tenant_*` schema plus an event trigger, a `lower()` in
`public`, a table in `public` and a large object. Each is refused with one line naming the first
offending entry, and a snapshot of the database (roles, registry rows, schemas, every table's
rows, large objects, event triggers, functions and public objects) is the same before and after.

Negative controls restore the same archives raw with `pg_restore` as a superuser into a throwaway
database: the payloads do install (and COPY ... TO PROGRAM does run), so the refusals above are
what stops them. A positive control imports an honest export.
"""

import asyncio
import io
import json
import os
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.database import create_engine, ensure_database
from tenancy.lifecycle.archive import archive_tenant, purge_tenant
from tenancy.lifecycle.archive_data import load_data
from tenancy.lifecycle.archive_toc import InvalidArchive, parse_toc, refused_entries
from tenancy.lifecycle.catalog import Catalog, catalog_differences, schema_catalog
from tenancy.lifecycle.onboarding import CreatedTenant, create_tenant
from tenancy.lifecycle.pgtools import pg_tool, server_major
from tenancy.naming import quote_schema
from tenancy.settings import TenancySettings
from tenancy.testing.citus import on_citus
from tenancy.testing.drop import drop_database
from tenancy.testing.servers import client
from tenancy.testing.throwaway import throwaway_url
from tests.support.common import known_to_running_apps, row_counts
from tests.support.lifecycle import cli, one_error_line

Payload = Callable[[str, str], list[str]]
"""(the tampered tenant's quoted schema, another tenant's quoted schema) -> SQL run as owner."""


def marker_file() -> Path:
    """Where COPY ... TO PROGRAM leaves its mark: the server's user must be able to write it."""
    return Path("/tmp") / f"tenantry-pwned-{secrets.token_hex(6)}"


MARKER = marker_file()
PROGRAM = f"cat >/dev/null; touch {MARKER}"

COPY_TO_PROGRAM = [
    # The program reads what COPY writes first: one that exits at once breaks COPY's pipe.
    f"""CREATE FUNCTION {{s}}.run_it() RETURNS void LANGUAGE plpgsql AS $f$
        BEGIN EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', '{PROGRAM}'); END $f$""",
    # An index expression must be IMMUTABLE (which may not COPY itself), so it calls one that is
    # not: the lie is never checked, and building the index runs it for every row.
    """CREATE FUNCTION {s}.boom(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $f$
        BEGIN PERFORM {s}.run_it(); RETURN t; END $f$""",
]

TAMPERED: dict[str, tuple[str, Payload]] = {
    "function": (
        "FUNCTION",
        lambda s, o: [f"CREATE FUNCTION {s}.helper() RETURNS int LANGUAGE sql AS 'SELECT 1'"],
    ),
    "security definer trigger": (
        "FUNCTION",
        lambda s, o: [
            f"""CREATE FUNCTION {s}.shell() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
                AS $f$ BEGIN EXECUTE NEW.name; RETURN NEW; END $f$""",
            f"CREATE TRIGGER shell BEFORE INSERT ON {s}.songs "
            f"FOR EACH ROW EXECUTE FUNCTION {s}.shell()",
        ],
    ),
    "view named users reading another tenant": (
        "VIEW",
        lambda s, o: [f"DROP TABLE {s}.users", f"CREATE VIEW {s}.users AS SELECT * FROM {o}.users"],
    ),
    "rule": (
        "RULE",
        lambda s, o: [
            f"CREATE RULE copy_out AS ON INSERT TO {s}.todos "
            f"DO ALSO INSERT INTO {o}.todos (content) VALUES (NEW.content)"
        ],
    ),
    "policy": (
        "POLICY",
        lambda s, o: [
            f"ALTER TABLE {s}.todos ENABLE ROW LEVEL SECURITY",
            f"CREATE POLICY everyone ON {s}.todos USING (true)",
        ],
    ),
    "copy to program behind an index": (
        "FUNCTION",
        lambda s, o: [
            *(statement.format(s=s) for statement in COPY_TO_PROGRAM),
            f"CREATE INDEX boom ON {s}.todos ({s}.boom(content))",
        ],
    ),
    "copy to program in a default": (
        "FUNCTION",
        lambda s, o: [
            *(statement.format(s=s) for statement in COPY_TO_PROGRAM),
            f"ALTER TABLE {s}.todos ALTER COLUMN content SET DEFAULT {s}.boom('x')",
        ],
    ),
    "trigger writing another tenant's api keys": (
        "FUNCTION",
        lambda s, o: [
            f"""CREATE FUNCTION {s}.plant() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
                AS $f$ BEGIN
                  INSERT INTO tenantry.api_keys (key_id, tenant_id, key_hash)
                  SELECT 'aaaaaaaaaaaa', id, 'planted' FROM tenantry.tenants
                  WHERE schema_name = '{o.strip('"')}';
                  RETURN NEW; END $f$""",
            f"CREATE TRIGGER plant AFTER INSERT ON {s}.todos "
            f"FOR EACH ROW EXECUTE FUNCTION {s}.plant()",
        ],
    ),
    "extra index": (
        "INDEX",
        lambda s, o: [f"CREATE INDEX extra ON {s}.todos (created_at)"],
    ),
    "extra table": ("TABLE", lambda s, o: [f"CREATE TABLE {s}.extra (id int)"]),
    "type the revisions do not make": (
        "TYPE",
        lambda s, o: [f"CREATE TYPE {s}.mood AS ENUM ('ok')"],
    ),
    "domain with a check calling a function": (
        "FUNCTION",
        lambda s, o: [
            *(statement.format(s=s) for statement in COPY_TO_PROGRAM),
            f"CREATE DOMAIN {s}.boomed AS text CHECK ({s}.boom(VALUE) IS NOT NULL)",
        ],
    ),
    "domain": ("DOMAIN", lambda s, o: [f"CREATE DOMAIN {s}.positive AS int CHECK (VALUE > 0)"]),
    "revision this code does not know": (
        "not in this code's history",
        lambda s, o: [f"UPDATE {s}.alembic_version SET version_num = 'f00dfeedbeef'"],
    ),
    "revision named by a symbol": (
        "not in this code's history",
        lambda s, o: [f"UPDATE {s}.alembic_version SET version_num = 'heads'"],
    ),
    "extra column": ("unknown column", lambda s, o: [f"ALTER TABLE {s}.todos ADD COLUMN x int"]),
}


@dataclass(frozen=True)
class Snapshot:
    roles: frozenset
    registry: frozenset
    schemas: frozenset
    rows: tuple
    large_objects: int
    event_triggers: frozenset
    functions: frozenset
    public: frozenset


async def snapshot(engine: AsyncEngine) -> Snapshot:
    """Everything a hostile archive could change, in this database and the cluster's roles."""
    async with engine.connect() as conn:

        async def rows(sql: str) -> frozenset:
            return frozenset(tuple(r) for r in await conn.execute(text(sql)))

        return Snapshot(
            roles=await rows(
                "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolbypassrls"
                " FROM pg_roles"
            ),
            registry=await rows(
                "SELECT 't', t::text FROM tenantry.tenants t"
                " UNION ALL SELECT 'k', k::text FROM tenantry.api_keys k"
            ),
            schemas=await rows("SELECT nspname FROM pg_namespace"),
            rows=tuple(sorted((await row_counts(engine)).items())),
            large_objects=await conn.scalar(text("SELECT count(*) FROM pg_largeobject_metadata")),
            event_triggers=await rows("SELECT evtname FROM pg_event_trigger"),
            functions=await rows(
                "SELECT n.nspname, p.proname FROM pg_proc p JOIN pg_namespace n"
                " ON n.oid = p.pronamespace WHERE n.nspname NOT IN"
                " ('pg_catalog', 'information_schema')"
            ),
            public=await rows(
                "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
            ),
        )


async def seeded(engine: AsyncEngine, tenant: CreatedTenant) -> None:
    async with engine.begin() as conn:
        schema = quote_schema(tenant.schema)
        await conn.execute(text(f"INSERT INTO {schema}.todos (content) VALUES ('one'), ('two')"))
        await conn.execute(text(f"INSERT INTO {schema}.songs (name, artist) VALUES ('s', 'a')"))


async def tampered_export(
    engine: AsyncEngine, blueprint, other: CreatedTenant, payload: Payload, file: Path
) -> None:
    """A real tenant with the payload added, exported with `tenantry tenants export`, then
    archived and purged (so that the import's slug is free and the payload lives only in the
    file)."""
    source = await create_tenant(engine, blueprint, "h-" + secrets.token_hex(5))
    await seeded(engine, source)
    async with engine.begin() as conn:
        if on_citus():  # an attacker's cluster allows what a careful one refuses by default
            await conn.exec_driver_sql("SET LOCAL citus.enable_unsafe_triggers = on")
        for statement in payload(quote_schema(source.schema), quote_schema(other.schema)):
            await conn.exec_driver_sql(statement)
    MARKER.unlink(missing_ok=True)
    exported = await cli("tenants", "export", source.slug, str(file))
    assert exported.exit_code == 0, exported.output
    await archive_tenant(engine, source.slug)
    await purge_tenant(engine, source.slug)


@pytest.mark.parametrize("case", TAMPERED.values(), ids=TAMPERED.keys())
async def test_a_tampered_export_is_refused_and_changes_nothing(
    engine: AsyncEngine, blueprint, other_tenant: CreatedTenant, tmp_path: Path, case
) -> None:
    named, payload = case
    file = tmp_path / "tampered.dump"
    await tampered_export(engine, blueprint, other_tenant, payload, file)
    before = await snapshot(engine)

    error = one_error_line(
        await cli("tenants", "import", str(file), "--as", "x-" + secrets.token_hex(4))
    )

    assert "refused" in error and named in error, error
    assert await snapshot(engine) == before
    assert not MARKER.exists()


@pytest.fixture
async def throwaway(server_url: str):
    """An empty database on the same server, for whole-database dumps and raw restores."""
    url = throwaway_url(server_url, "hostile")
    await ensure_database(url)
    engine = create_engine(url, TenancySettings(database_url=url))
    try:
        yield url, engine
    finally:
        await engine.dispose()
        await drop_database(url)


def raw_restore(url: str, file: Path) -> subprocess.CompletedProcess:
    """What a plain `pg_restore -d` as a superuser would do with the archive (test only)."""
    major = asyncio.run(_major(url))
    tool = pg_tool("pg_restore", major, url)
    return subprocess.run(
        [str(tool.path), "--no-owner", "--dbname", make_url(url).database or "", str(file)],
        env={**os.environ, **tool.env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _major(url: str) -> int:
    engine = create_engine(url, TenancySettings(database_url=url))
    try:
        async with engine.connect() as conn:
            return await server_major(conn)
    finally:
        await engine.dispose()


IN_TENANT_SCHEMAS = "SELECT {0} FROM {1} WHERE pronamespace::regnamespace::text LIKE 'tenant\\_%'"
TRIGGERS = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"


IN_TENANT_SCHEMAS = (
    "SELECT proname FROM pg_proc WHERE pronamespace::regnamespace::text ~ '^tenant_'"
)
TRIGGERS = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"


@pytest.mark.negative_control
async def test_negative_control_a_raw_restore_installs_the_payloads_and_runs_copy_to_program(
    engine: AsyncEngine, blueprint, other_tenant: CreatedTenant, tmp_path: Path, throwaway
) -> None:
    """Without the allow-list: pg_restore as a superuser creates the function, the trigger and
    the index, and building that index runs COPY ... TO PROGRAM on the database host."""
    url, scratch = throwaway
    file = tmp_path / "tampered.dump"
    case = TAMPERED["copy to program behind an index"][1]
    both: Payload = lambda s, o: [  # noqa: E731
        *case(s, o),
        *TAMPERED["trigger writing another tenant's api keys"][1](s, o),
    ]
    await tampered_export(engine, blueprint, other_tenant, both, file)
    assert not MARKER.exists()
    try:
        await asyncio.to_thread(raw_restore, url, file)
        assert MARKER.exists(), "COPY ... TO PROGRAM ran during the raw restore"
    finally:
        MARKER.unlink(missing_ok=True)
    async with scratch.connect() as conn:
        functions = set(await conn.scalars(text(IN_TENANT_SCHEMAS)))
        triggers = set(await conn.scalars(text(TRIGGERS)))
    assert {"boom", "plant"} <= functions and "plant" in triggers


WHOLE_DATABASE = {
    "EVENT TRIGGER": [
        """CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql
           AS $f$ BEGIN RAISE NOTICE 'ddl'; END $f$""",
        "CREATE EVENT TRIGGER on_ddl ON ddl_command_start EXECUTE FUNCTION public.on_ddl()",
    ],
    "FUNCTION public lower(text)": [
        "CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE sql AS 'SELECT $1'"
    ],
    "TABLE public planted": ["CREATE TABLE public.planted (x int)"],
    "large object": ["SELECT lo_from_bytea(0, 'payload')"],
}


async def whole_database_dump(url: str, scratch: AsyncEngine, honest: Path, dump: Path) -> None:
    """A throwaway database holding one tenant schema (an honest export restored raw) and every
    payload of WHOLE_DATABASE, dumped whole with pg_dump --format=custom."""
    restored = await asyncio.to_thread(raw_restore, url, honest)
    assert restored.returncode == 0, restored.stderr
    async with scratch.begin() as conn:
        for statements in WHOLE_DATABASE.values():
            for statement in statements:
                await conn.exec_driver_sql(statement)
        major = await server_major(conn)
    pg_dump = pg_tool("pg_dump", major, url)
    await asyncio.to_thread(pg_dump.run, "--format=custom", f"--file={dump}")


async def test_a_whole_database_dump_is_refused_and_changes_nothing(
    engine: AsyncEngine, tenant: CreatedTenant, tmp_path: Path, throwaway
) -> None:
    url, scratch = throwaway
    honest, dump = tmp_path / "honest.dump", tmp_path / "whole.dump"
    assert (await cli("tenants", "export", tenant.slug, str(honest))).exit_code == 0
    await whole_database_dump(url, scratch, honest, dump)
    listing = pg_tool("pg_restore", await _major_of(engine), url).run("--list", str(dump))
    refused = " | ".join(entry.describe() for entry in refused_entries(parse_toc(listing)))
    for kind in ("EVENT TRIGGER", "FUNCTION public lower(text)", "TABLE public planted"):
        assert kind in refused, refused
    assert "BLOB" in refused or "LARGE OBJECT" in refused, refused
    before = await snapshot(engine)

    error = one_error_line(
        await cli("tenants", "import", str(dump), "--as", "w-" + secrets.token_hex(4))
    )

    assert "refused" in error or "not a tenant export" in error, error
    assert await snapshot(engine) == before


@pytest.mark.negative_control
async def test_negative_control_a_raw_restore_of_the_whole_database_dump_installs_it_all(
    engine: AsyncEngine, tenant: CreatedTenant, tmp_path: Path, throwaway, server_url: str
) -> None:
    url, scratch = throwaway
    honest, dump = tmp_path / "honest.dump", tmp_path / "whole.dump"
    assert (await cli("tenants", "export", tenant.slug, str(honest))).exit_code == 0
    await whole_database_dump(url, scratch, honest, dump)
    second = throwaway_url(server_url, "hostile")
    await ensure_database(second)
    try:
        await asyncio.to_thread(raw_restore, second, dump)
        target = create_engine(second, TenancySettings(database_url=second))
        try:
            async with target.connect() as conn:
                found = (
                    await conn.execute(
                        text(
                            "SELECT (SELECT count(*) FROM pg_event_trigger),"
                            " (SELECT count(*) FROM pg_largeobject_metadata),"
                            " to_regclass('public.planted') IS NOT NULL,"
                            " to_regprocedure('public.lower(text)') IS NOT NULL"
                        )
                    )
                ).one()
        finally:
            await target.dispose()
    finally:
        await drop_database(second)
    assert tuple(found) == (1, 1, True, True)


async def _major_of(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return await server_major(conn)


async def test_an_honest_export_still_imports_with_its_rows_and_sequences(
    api: str, engine: AsyncEngine, tenant: CreatedTenant, tmp_path: Path
) -> None:
    """The positive control: the same checks pass an untampered export, rows and identity
    included, and the import adds exactly one tenant, one key and one schema."""
    await seeded(engine, tenant)
    file = tmp_path / "honest.dump"
    assert (await cli("tenants", "export", tenant.slug, str(file))).exit_code == 0
    before = await snapshot(engine)
    imported = await cli("tenants", "import", str(file), "--as", f"{tenant.slug}-c", "--json")
    assert imported.exit_code == 0, imported.output
    record = json.loads(imported.stdout)
    copy = CreatedTenant(**record | {"schema": record.pop("schema_name")})
    after = await snapshot(engine)
    assert after.schemas - before.schemas == {(copy.schema,)}
    assert after.roles == before.roles and after.functions == before.functions
    assert len(after.registry - before.registry) == 2  # the tenant row and its key
    await known_to_running_apps(str(engine.url), copy.slug)  # imported behind the api's back
    async with client(api, copy.slug, copy.api_key) as http:
        assert (await http.post("/todos", json={"content": "three"})).json()["id"] == 3
        songs = (await http.get("/songs")).json()
    assert [song["name"] for song in songs["items"]] == ["s"]


async def sequence_tampered_export(engine: AsyncEngine, blueprint, setval: str, file: Path) -> None:
    """An export whose todos sequence was set (by `setval(<seq>, <setval>)`) after two rows."""
    source = await create_tenant(engine, blueprint, "q-" + secrets.token_hex(5))
    await seeded(engine, source)
    schema = quote_schema(source.schema)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"SELECT setval('{schema}.todos_id_seq', {setval})")
    exported = await cli("tenants", "export", source.slug, str(file))
    assert exported.exit_code == 0, exported.output
    await archive_tenant(engine, source.slug)
    await purge_tenant(engine, source.slug)


async def test_a_sequence_set_behind_its_rows_is_moved_past_them(
    api: str, engine: AsyncEngine, blueprint, tmp_path: Path
) -> None:
    """An archive whose sequence would hand out ids its rows already hold: the import moves it
    past the highest id, so the tenant's next insert works (it was a 500 on every POST)."""
    file = tmp_path / "behind.dump"
    await sequence_tampered_export(engine, blueprint, "1, false", file)
    imported = await cli(
        "tenants", "import", str(file), "--as", "q-" + secrets.token_hex(4), "--json"
    )
    assert imported.exit_code == 0, imported.output
    record = json.loads(imported.stdout)
    await known_to_running_apps(str(engine.url), record["slug"])  # imported behind the api's back
    async with client(api, record["slug"], record["api_key"]) as http:
        created = await http.post("/todos", json={"content": "three"})
    assert created.status_code == 201, created.text
    assert created.json()["id"] == 3


async def test_an_exhausted_sequence_is_refused_and_changes_nothing(
    engine: AsyncEngine, blueprint, tmp_path: Path
) -> None:
    file = tmp_path / "exhausted.dump"
    await sequence_tampered_export(engine, blueprint, "9223372036854775807", file)
    before = await snapshot(engine)
    error = one_error_line(
        await cli("tenants", "import", str(file), "--as", "q-" + secrets.token_hex(4))
    )
    assert "refused" in error and "exhausted" in error, error
    assert await snapshot(engine) == before


INLINE_DDL: Payload = lambda s, o: [  # noqa: E731
    f"ALTER TABLE {s}.songs ADD CONSTRAINT sneaky CHECK (name <> 'x')",
    f"ALTER TABLE {s}.todos ALTER COLUMN content SET DEFAULT pg_catalog.pg_read_file('/etc/hosts')",
    f"ALTER TABLE {s}.users ALTER COLUMN name DROP NOT NULL",
]
"""Changes pg_dump writes inside a TABLE entry's own definition, not as entries of their own."""


def comparable(catalog: Catalog) -> Catalog:
    """A catalog without the sequences' last values (rows were imported, not inserted)."""
    sequences = {row[:8] + row[9:] for row in catalog["sequences"]}
    return {**catalog, "sequences": sequences}


async def test_ddl_inside_a_table_definition_is_never_applied(
    engine: AsyncEngine, blueprint, other_tenant: CreatedTenant, tmp_path: Path
) -> None:
    """A check constraint, a default calling pg_read_file, a dropped NOT NULL: pg_dump writes
    them into the TABLE entry itself, so the allow-list cannot see them; but the import builds
    the schema from this code's revisions, so the imported catalog equals a new tenant's."""
    file = tmp_path / "inline.dump"
    await tampered_export(engine, blueprint, other_tenant, INLINE_DDL, file)
    new_slug = "i-" + secrets.token_hex(4)
    imported = await cli("tenants", "import", str(file), "--as", new_slug, "--json")
    assert imported.exit_code == 0, imported.output
    record = json.loads(imported.stdout)
    copy = CreatedTenant(**record | {"schema": record.pop("schema_name")})
    async with engine.connect() as conn:
        got = comparable(await schema_catalog(conn, copy.schema))
        want = comparable(await schema_catalog(conn, other_tenant.schema))
    assert catalog_differences(want, got) == []


async def test_a_data_script_with_anything_but_rows_is_refused(
    engine: AsyncEngine, tenant: CreatedTenant, tmp_path: Path
) -> None:
    """What pg_restore writes from the archive is read as data: a statement smuggled into it
    (here, as if a TABLE DATA entry carried SQL) refuses the import instead of running."""
    schema = tenant.schema
    script = io.BytesIO(
        b"SET client_encoding = 'UTF8';\n"
        + f"COPY {schema}.todos (id, content) FROM stdin;\n1\tok\n\\.\n".encode()
        + b"DROP TABLE tenantry.api_keys;\n"
    )
    async with engine.connect() as conn, conn.begin():
        with pytest.raises(InvalidArchive, match=r"unexpected statement.*DROP TABLE"):
            await load_data(conn, script, schema, schema, {"todos": {"id", "content"}}, set())
        await conn.rollback()
    script = io.BytesIO(f"COPY {schema}.api_keys (key_id) FROM stdin;\n\\.\n".encode())
    async with engine.connect() as conn, conn.begin():
        with pytest.raises(InvalidArchive, match="unknown table 'api_keys'"):
            await load_data(conn, script, schema, schema, {"todos": {"id"}}, set())
        await conn.rollback()
