"""Export one tenant's schema to a file, and import such a file as a tenant (under any slug).

An export is `pg_dump --format=custom --schema=<its schema>`, written to a new file of mode 0600.

An import runs no SQL from the archive, as any archive may come from an attacker: a `TABLE` entry
of a custom-format archive is free text that `pg_restore` would send to the server as it is.
Instead:

1. the table of contents (`pg_restore --list`) is checked against an allow-list
   (`archive_toc`): one tenant schema, its tables, sequences, indexes, constraints, their rows
   and sequence values; anything else refuses the archive before anything happens;
2. `pg_restore --data-only --use-list=<data entries>` writes the rows without connecting to
   any database, to a pipe read as they come (`archive_stream`: never to disk, at most
   TENANTRY_IMPORT_MAX_BYTES of them), once for the revision, once for the rows;
3. then one transaction: register the tenant, create its schema and build it from this code's
   own revisions at the archive's revision (its `alembic_version` row), refuse any entry of the
   archive that names an object this expected catalog lacks, copy the rows in as data
   (`archive_data`, COPY protocol) and set the sequences, bring the schema to head, grant the
   runtime role, issue a key, NOTIFY.

A failure anywhere rolls that transaction back: no tenant, no schema, no role, no row changed.
The original tenant and a copy can live side by side (the archive's schema name is only read).
"""

import asyncio
import contextlib
import errno
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenancy.lifecycle.archive_data import (
    VERSION_TABLE,
    archive_revisions,
    load_data,
    settle_sequences,
)
from tenancy.lifecycle.archive_stream import DataStream, restored_data
from tenancy.lifecycle.archive_toc import (
    ArchiveToc,
    ExpectedObjects,
    InvalidArchive,
    TocEntry,
    checked_toc,
    unexpected_entries,
)
from tenancy.lifecycle.catalog import schema_catalog
from tenancy.lifecycle.catchup import bring_to_head, refuse_if_behind
from tenancy.lifecycle.errors import LifecycleError, SchemaMissing, TenantExists, UnknownTenant
from tenancy.lifecycle.onboarding import (
    CreatedTenant,
    Onboarding,
    announce,
    create_schema,
    grant,
    issue_first_key,
    register,
    run_steps,
)
from tenancy.lifecycle.pgtools import PgTool, PgToolFailed, pg_tool, server_major
from tenancy.lifecycle.records import schema_present
from tenancy.migrate.tracks import Tracks, run_track
from tenancy.naming import checked_data_schema, is_tenant_schema, quote_schema, slug_of_schema
from tenancy.registry import tenants
from tenancy.settings import IMPORT_MAX_BYTES

_ARCHIVED_SLUG = re.compile(r"^archived_[0-9]+_")  # what is left is the slug, with _ for -

__all__ = ["IMPORT_STEPS", "ExportedTenant", "export_tenant", "import_tenant"]


class ExportTargetExists(LifecycleError):
    """The export's file exists (or is a symbolic link) and --force was not given."""


class ExportTargetUnwritable(LifecycleError):
    """The export's file cannot be created where it was asked for (named as the user gave it)."""


@dataclass(frozen=True, slots=True)
class ExportedTenant:
    slug: str
    schema: str
    file: Path
    size_bytes: int


async def export_tenant(
    engine: AsyncEngine, slug: str, file: Path, *, force: bool = False
) -> ExportedTenant:
    """A consistent snapshot of the tenant's schema (live or archived), data included.

    Written to a new file of mode 0600 next to `file` (O_CREAT | O_EXCL | O_NOFOLLOW), then
    linked to `file`: an existing file is refused (ExportTargetExists) unless `force`, which
    replaces it; a symbolic link at `file` is never followed (refused, or replaced with force).
    A failed dump leaves no file behind.
    """
    async with engine.connect() as conn:
        schema = await tenant_location(conn, slug)
        if not await schema_present(conn, schema):
            raise SchemaMissing(f"tenant {slug!r} has no schema to export ({schema} is gone)")
        pg_dump = pg_tool("pg_dump", await server_major(conn), engine.url)
    await asyncio.to_thread(write_export, pg_dump, schema, file, force)
    size = await asyncio.to_thread(lambda: file.lstat().st_size)
    return ExportedTenant(slug, schema, file, size)


def write_export(pg_dump: PgTool, schema: str, file: Path, force: bool) -> None:
    """pg_dump's archive of `schema` into a new file of mode 0600, then moved to `file`."""
    if not force and os.path.lexists(file):
        raise ExportTargetExists(f"{file} exists: pass --force to replace it")
    partial = file.with_name(f".{file.name}.{os.urandom(6).hex()}.partial")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(partial, flags, 0o600)
    except OSError as exc:
        raise ExportTargetUnwritable(_unwritable(file, exc)) from None
    try:
        with os.fdopen(fd, "wb") as out:
            pg_dump.run_to(out, "--format=custom", f"--schema={schema}", "--no-owner")
        _put_in_place(partial, file, force)
    finally:
        if os.path.lexists(partial):
            os.unlink(partial)


def _unwritable(file: Path, exc: OSError) -> str:
    """Why `file` cannot be written, naming it and its directory, never the temporary file."""
    directory = file.parent
    if isinstance(exc, FileNotFoundError):
        reason = f"directory {directory} does not exist"
    elif isinstance(exc, NotADirectoryError):
        reason = f"{directory} is not a directory"
    elif isinstance(exc, PermissionError):
        reason = f"no permission to create files in {directory}"
    else:
        reason = exc.strerror or type(exc).__name__
    return f"cannot write {file}: {reason}"


def _put_in_place(partial: Path, file: Path, force: bool) -> None:
    """rename() replaces a symbolic link itself, link() never overwrites: neither follows one."""
    if force:
        os.replace(partial, file)
        return
    try:
        os.link(partial, file, follow_symlinks=False)
    except FileExistsError:
        raise ExportTargetExists(f"{file} exists: pass --force to replace it") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP):
            raise
        os.rename(partial, file)  # no hard links here: the lexists() check above must do


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
    """An import: the archive, its checked table of contents, how to read its rows."""

    toc: ArchiveToc = field(kw_only=True)
    archive: Path = field(kw_only=True)
    restore: PgTool = field(kw_only=True)
    folder: Path = field(kw_only=True)
    """A private temporary folder (mode 0700) for pg_restore's lists of entries."""
    max_bytes: int = field(kw_only=True)
    tracks: Tracks = field(kw_only=True)
    revision: str = field(default="", kw_only=True)
    """The archive's revision, once read."""

    @property
    def engine_connection(self) -> AsyncConnection:
        """The SQLAlchemy connection of the import's transaction (an import runs on an engine:
        Alembic builds and upgrades the schema)."""
        if self.sqlalchemy is None:
            raise RuntimeError("an import runs on an engine (run_steps)")
        return self.sqlalchemy

    def data(
        self, name: str, entries: list[TocEntry]
    ) -> "contextlib.AbstractContextManager[DataStream]":
        """pg_restore's script of `entries`, streamed (archive_stream)."""
        use_list = self.folder / name
        private_file(use_list, "".join(entry.line + "\n" for entry in entries))
        return restored_data(self.restore, self.archive, use_list, self.max_bytes)


async def import_tenant(
    engine: AsyncEngine,
    tracks: Tracks,
    file: Path,
    slug: str | None = None,
    display_name: str | None = None,
    *,
    max_bytes: int = IMPORT_MAX_BYTES,
) -> CreatedTenant:
    """A new tenant from an export; InvalidArchive (one line) for anything but a tenant's data,
    ArchiveTooLarge when its data expands to more than `max_bytes`.

    Nothing is written to the database before the one transaction of IMPORT_STEPS, and that
    transaction is rolled back on any failure. ProcessBehind when a deploy moved the head.
    """
    refuse_if_behind(tracks)
    async with engine.connect() as conn:
        major = await server_major(conn)
    restore = pg_tool("pg_restore", major, engine.url)
    try:
        listing = await asyncio.to_thread(restore.run, "--list", str(file))
    except PgToolFailed as exc:
        raise InvalidArchive(
            f"{file} is not a tenant export: pg_restore cannot read it (`tenantry tenants "
            "export` writes one)"
        ) from exc
    toc = checked_toc(listing)
    with tempfile.TemporaryDirectory(prefix="tenantry-import-") as folder:
        adoption = Adoption.of(
            default_slug(toc.schema) if slug is None else slug,
            display_name,
            toc=toc,
            archive=file,
            restore=restore,
            folder=Path(folder),
            max_bytes=max_bytes,
            tracks=tracks,
        )
        await refuse_taken_slug(engine, adoption.slug)
        return await run_steps(engine, adoption, IMPORT_STEPS)


def private_file(path: Path, text: str) -> None:
    """A new file only its owner can read (O_EXCL: never one planted there before)."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(text)


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


async def build_at_archive_revision(_conn: asyncpg.Connection, adoption: Adoption) -> None:
    """The new (empty) schema, built by this code's revisions up to the archive's revision."""
    conn = adoption.engine_connection
    revisions = await asyncio.to_thread(read_revisions, adoption)
    if len(revisions) != 1:
        raise InvalidArchive(f"refused: expected one alembic_version row, found {len(revisions)}")
    try:
        known = adoption.tracks.tenant.get_revision(revisions[0])
        if known is None or known.revision != revisions[0]:  # 'head', 'base', a prefix...
            raise CommandError("not a revision id")
        await conn.run_sync(run_track, adoption.tracks.tenant, adoption.schema, revisions[0])
        adoption.revision = revisions[0]
    except (CommandError, RevisionError, KeyError) as exc:
        raise InvalidArchive(
            f"refused: revision {revisions[0][:40]!r} is not in this code's history: {exc}"
        ) from None


def read_revisions(adoption: Adoption) -> list[str]:
    """The archive's alembic_version rows, from pg_restore's script of that one entry."""
    version = [
        entry
        for entry in adoption.toc.data_entries()
        if entry.kind == "TABLE DATA" and entry.names(VERSION_TABLE)
    ]
    with adoption.data("version.list", version) as stream:
        return archive_revisions(stream.lines, adoption.toc.schema)


async def check_entries(_conn: asyncpg.Connection, adoption: Adoption) -> None:
    """Every entry of the archive names an object of the expected catalog (built just now)."""
    conn = adoption.engine_connection
    expected = expected_objects(await schema_catalog(conn, adoption.schema))
    unexpected = unexpected_entries(adoption.toc, expected)
    if unexpected:
        raise InvalidArchive(
            f"refused: the archive holds {unexpected[0].describe()!r}, which revision "
            f"{adoption.revision} does not create"
        )


async def load_rows(_conn: asyncpg.Connection, adoption: Adoption) -> None:
    conn = adoption.engine_connection
    catalog = await schema_catalog(conn, adoption.schema)
    columns: dict[str, set[str]] = {}
    for row in catalog["columns"]:
        columns.setdefault(row[0], set()).add(row[2])
    tables = {row[0] for row in catalog["relations"] if row[1] in ("r", "p")}
    sequences = {row[0] for row in catalog["relations"] if row[1] == "S"}
    with adoption.data("data.list", adoption.toc.data_entries()) as stream:
        await load_data(
            conn,
            stream.lines,
            adoption.toc.schema,
            adoption.schema,
            {table: cols for table, cols in columns.items() if table in tables},
            sequences,
        )
        stream.check_complete()
    await settle_sequences(conn, adoption.schema, quote_schema(adoption.schema))


def expected_objects(catalog: dict) -> ExpectedObjects:
    """The names a schema's catalog (tenancy.lifecycle.catalog) holds, as an archive names them."""
    return ExpectedObjects(
        relations=frozenset((row[0], row[1]) for row in catalog["relations"]),
        constraints=frozenset((row[0], row[1]) for row in catalog["constraints"]),
        columns=frozenset((row[0], row[2]) for row in catalog["columns"]),
        types=frozenset(row[0] for row in catalog["types"] if row[1] in ("e", "d", "r", "m")),
    )


async def catch_up(_conn: asyncpg.Connection, adoption: Adoption) -> None:
    await bring_to_head(adoption.engine_connection, adoption.tracks, adoption.schema)


IMPORT_STEPS = (
    register,
    create_schema,
    build_at_archive_revision,
    check_entries,
    load_rows,
    catch_up,
    grant,
    issue_first_key,
    announce,
)
"""One transaction (onboarding.run_steps, on the engine): all of them happen or none does. The
steps shared with onboarding run over its asyncpg connection, the import's own over the
SQLAlchemy connection of the same transaction (Alembic, the catalog, COPY)."""
