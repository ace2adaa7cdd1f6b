"""Export one tenant's schema to a file, and import such a file as a tenant (under any slug).

An export is `pg_dump --format=custom --schema=<its schema>`. An import cannot simply restore
it: the archive names its schema, which is not the new tenant's and may be taken (a copy beside
the original). So `pg_restore` turns the archive into SQL, and `psql` runs it in one transaction
that renames the schema to a staging name right after creating it; if the original exists, that
transaction first moves it aside and finally puts it back (other sessions, reading committed
catalog rows, never see it move). Then one transaction of ours renames the staging schema to the
tenant's, registers the tenant, brings it to head and issues a key. A failure anywhere leaves no
tenant; a killed import may leave only its `importing_*` staging schema, which blocks nothing.
"""

import asyncio
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenancy.lifecycle.catchup import bring_to_head
from tenancy.lifecycle.errors import LifecycleError, TenantExists, UnknownTenant
from tenancy.lifecycle.pgtools import PgToolFailed, pg_tool, server_major
from tenancy.migrate.tracks import Tracks
from tenancy.naming import (
    checked_data_schema,
    is_archive_schema,
    is_staging_schema,
    is_tenant_schema,
    quote_data_schema,
    quote_schema,
    quote_staging_schema,
    slug_of_schema,
    staging_schema,
)
from tenancy.provisioning import (
    CreatedTenant,
    Onboarding,
    announce,
    duplicates_as,
    grant,
    issue_first_key,
    register,
    run_steps,
)
from tenancy.registry import tenants

PSQL_FLAGS = ("--no-psqlrc", "--quiet", "--single-transaction", "--set", "ON_ERROR_STOP=1")
"""Every --command and --file in one transaction, rolled back at the first error."""
_SCHEMA_ENTRY = re.compile(r"^\d+; \d+ \d+ SCHEMA - (\S+)", re.MULTILINE)
_ARCHIVED_SLUG = re.compile(r"^archived_[0-9]+_")  # what is left is the slug, with _ for -


class InvalidArchive(LifecycleError):
    """The file is not an export of exactly one tenant schema."""


@dataclass(frozen=True, slots=True)
class ExportedTenant:
    slug: str
    schema: str
    file: Path
    size_bytes: int


async def export_tenant(engine: AsyncEngine, slug: str, file: Path) -> ExportedTenant:
    """A consistent snapshot of the tenant's schema (live or archived), data included."""
    async with engine.connect() as conn:
        schema = await tenant_location(conn, slug)
        pg_dump = pg_tool("pg_dump", await server_major(conn), engine.url)
    await asyncio.to_thread(
        pg_dump.run, "--format=custom", f"--schema={schema}", "--no-owner", f"--file={file}"
    )
    size = await asyncio.to_thread(lambda: file.stat().st_size)
    return ExportedTenant(slug, schema, file, size)


async def tenant_location(conn: AsyncConnection, slug: str) -> str:
    """The schema that holds the tenant's tables now: its own, or its archive."""
    row = (
        await conn.execute(
            select(tenants.c.schema_name, tenants.c.archived_schema).where(tenants.c.slug == slug)
        )
    ).one_or_none()
    if row is None:
        raise UnknownTenant(f"unknown tenant {slug!r}")
    return checked_data_schema(row.archived_schema or row.schema_name)


@dataclass
class Adoption(Onboarding):
    """An import: the tenant's tables already sit in a staging schema, at some revision."""

    staging: str = field(kw_only=True)
    tracks: Tracks = field(kw_only=True)


async def import_tenant(
    engine: AsyncEngine,
    tracks: Tracks,
    file: Path,
    slug: str | None = None,
    display_name: str | None = None,
) -> CreatedTenant:
    async with engine.connect() as conn:
        major = await server_major(conn)
    restore, psql = pg_tool("pg_restore", major, engine.url), pg_tool("psql", major, engine.url)
    try:
        listing = await asyncio.to_thread(restore.run, "--list", str(file))
    except PgToolFailed as exc:
        raise InvalidArchive(
            f"{file} is not a tenant export: pg_restore cannot read it (`tenantry tenants "
            "export` writes one)"
        ) from exc
    source = exported_schema(listing)
    adoption = Adoption.of(
        slug or default_slug(source), display_name, staging=staging_schema(), tracks=tracks
    )
    await refuse_taken_slug(engine, adoption.slug)
    try:
        with tempfile.TemporaryDirectory(prefix="tenantry-import-") as folder:
            script = Path(folder) / "restore.sql"
            await asyncio.to_thread(
                restore.run, "--no-owner", "--no-privileges", f"--file={script}", str(file)
            )
            taken = await schema_exists(engine, source)
            commands = staging_commands(script, source, adoption.staging, taken)
            await asyncio.to_thread(psql.run, *PSQL_FLAGS, *commands)
        return await run_steps(engine, adoption, IMPORT_STEPS)
    finally:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                f"DROP SCHEMA IF EXISTS {quote_staging_schema(adoption.staging)} CASCADE"
            )


def staging_commands(script: Path, source: str, staging: str, source_taken: bool) -> list[str]:
    """psql arguments restoring `script` into `staging`, one transaction (see PSQL_FLAGS)."""
    restored = ["--file", str(script), "--command", _rename(source, staging)]
    if not source_taken:
        return restored
    aside = staging_schema()
    return [
        "--command",
        _rename(source, aside),
        *restored,
        "--command",
        _rename(aside, source),
    ]


def _rename(old: str, new: str) -> str:
    return f"ALTER SCHEMA {_quote_any(old)} RENAME TO {_quote_any(new)}"


def _quote_any(name: str) -> str:
    return quote_staging_schema(name) if is_staging_schema(name) else quote_data_schema(name)


async def schema_exists(engine: AsyncEngine, schema: str) -> bool:
    async with engine.connect() as conn:
        found = await conn.scalar(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :schema"), {"schema": schema}
        )
    return found is not None


def exported_schema(listing: str) -> str:
    """The one tenant (or archived tenant) schema a `pg_restore --list` shows."""
    schemas = _SCHEMA_ENTRY.findall(listing)
    if len(schemas) != 1 or not (is_tenant_schema(schemas[0]) or is_archive_schema(schemas[0])):
        raise InvalidArchive(
            f"not a tenant export: expected one tenant schema, found {schemas or 'none'}"
        )
    return schemas[0]


def default_slug(source: str) -> str:
    if not is_tenant_schema(source):
        suggestion = _ARCHIVED_SLUG.sub("", source).replace("_", "-")
        raise InvalidArchive(
            f"the file holds archived tenant {suggestion!r} (schema {source}): name the new "
            f"tenant with --as, e.g. --as {suggestion}"
        )
    return slug_of_schema(source)


async def refuse_taken_slug(engine: AsyncEngine, slug: str) -> None:
    """Fail before the slow part; the import's own transaction still settles any race."""
    async with engine.connect() as conn:
        if await conn.scalar(select(tenants.c.id).where(tenants.c.slug == slug)):
            raise TenantExists(f"tenant {slug!r} already exists")


async def adopt_staging_schema(conn: AsyncConnection, adoption: Adoption) -> None:
    """The staging schema becomes the tenant's, in the transaction that registers it."""
    renamed = f"{quote_staging_schema(adoption.staging)} RENAME TO {quote_schema(adoption.schema)}"
    async with duplicates_as(TenantExists(f"schema {adoption.schema} already exists")):
        await conn.exec_driver_sql(f"ALTER SCHEMA {renamed}")


async def catch_up(conn: AsyncConnection, adoption: Adoption) -> None:
    await bring_to_head(conn, adoption.tracks, adoption.schema)


IMPORT_STEPS = (register, adopt_staging_schema, catch_up, grant, issue_first_key, announce)
