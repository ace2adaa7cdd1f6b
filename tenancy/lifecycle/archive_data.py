"""The rows and sequence values of an archive, read as data: no SQL from the archive ever runs.

`pg_restore --data-only --use-list=... --file=-` (no database connection) writes the allowed
data entries (streamed here by `archive_stream`, never to disk) as a script of
`COPY <schema>.<table> (<columns>) FROM stdin;` blocks and
`SELECT pg_catalog.setval('<schema>.<sequence>', <n>, <bool>);` lines, framed by `SET` lines,
comments and psql's `\\restrict` markers. This module parses exactly that shape: a COPY header
names a table and columns, which are checked against the expected catalog and then fed to
PostgreSQL's COPY protocol as data (text format) into the new tenant's own table; a setval line
becomes a bound `setval` on an expected sequence. Any other line refuses the archive.
"""

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.lifecycle.archive_toc import InvalidArchive

_IDENT = r'(?:[a-z_][a-z0-9_$]*|"(?:[^"]|"")+")'
_COPY = re.compile(rf"^COPY ({_IDENT})\.({_IDENT}) \(((?:{_IDENT}, )*{_IDENT})\) FROM stdin;$")
_SETVAL = re.compile(
    rf"^SELECT pg_catalog\.setval\('({_IDENT})\.({_IDENT})', (-?\d{{1,19}}), (true|false)\);$"
)
_HARMLESS = re.compile(
    r"^(?:|--.*|SET [a-z_]+ = [^;]*;|SELECT pg_catalog\.set_config\('search_path', '', false\);"
    r"|\\(?:un)?restrict [A-Za-z0-9]+)$"
)
_ENCODING = re.compile(r"^SET client_encoding = '([A-Za-z0-9_]+)';$")
_END_OF_COPY = b"\\.\n"
_CHUNK = 256 * 1024
VERSION_TABLE = "alembic_version"
_SET_SEQUENCE = text(
    "SELECT setval(format('%I.%I', CAST(:schema AS text), CAST(:sequence AS text))::regclass, "
    ":value, :called)"
)


@dataclass(frozen=True, slots=True)
class CopyBlock:
    schema: str
    table: str
    columns: tuple[str, ...]


@dataclass
class LoadedData:
    rows: dict[str, int] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)


def unquote(identifier: str) -> str:
    if identifier.startswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier


def _split_columns(columns: str) -> tuple[str, ...]:
    return tuple(unquote(c) for c in re.findall(_IDENT, columns))


def archive_revisions(lines: BinaryIO, schema: str) -> list[str]:
    """The rows of the archive's `alembic_version` (its revision), read without loading."""
    for line in lines:
        block = _copy_header(line, schema)
        if block is None:
            continue
        rows = [row.decode().rstrip("\n") for row in _block_rows(lines)]
        if block.table == VERSION_TABLE:
            return rows
    return []


async def load_data(
    conn: AsyncConnection,
    lines: BinaryIO,
    source: str,
    target: str,
    columns: dict[str, set[str]],
    sequences: set[str],
) -> LoadedData:
    """Copy every block of the script read from `lines` into the same table of schema
    `target`, set sequences.

    `columns`: the expected tables and their columns; `sequences`: the expected sequences.
    Raises InvalidArchive for a line that is not data of an expected table or sequence.
    The version table is skipped: the caller built the schema at that revision.
    """
    raw = (await conn.get_raw_connection()).driver_connection
    loaded = LoadedData()
    for line in lines:
        block = _copy_header(line, source)
        if block is not None:
            _check_block(block, columns)
            if block.table == VERSION_TABLE:
                for _ in _block_rows(lines):
                    pass
                continue
            try:
                result = await raw.copy_to_table(
                    block.table,
                    source=_chunks(lines),
                    columns=list(block.columns),
                    schema_name=target,
                    format="text",
                )
            except asyncpg.PostgresError as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise InvalidArchive(
                    f"refused: the archive's rows of {block.table} do not load: {first}"
                ) from None
            loaded.rows[block.table] = int(result.split()[-1])
            continue
        decoded = _decoded(line)
        setval = _SETVAL.match(decoded)
        if setval is not None:
            schema, name = unquote(setval.group(1)), unquote(setval.group(2))
            if schema != source or name not in sequences:
                raise InvalidArchive(f"refused: the archive sets an unknown sequence {name!r}")
            value = int(setval.group(3))
            await conn.execute(
                _SET_SEQUENCE,
                {
                    "schema": target,
                    "sequence": name,
                    "value": value,
                    "called": setval.group(4) == "true",
                },
            )
            loaded.sequences[name] = value
            continue
        _check_harmless(decoded)
    return loaded


def _copy_header(line: bytes, schema: str) -> CopyBlock | None:
    match = _COPY.match(_decoded(line))
    if match is None:
        return None
    if unquote(match.group(1)) != schema:
        raise InvalidArchive(f"refused: the archive copies rows into {match.group(1)[:63]}")
    return CopyBlock(schema, unquote(match.group(2)), _split_columns(match.group(3)))


def _check_block(block: CopyBlock, columns: dict[str, set[str]]) -> None:
    expected = columns.get(block.table)
    if expected is None:
        raise InvalidArchive(f"refused: the archive holds rows of an unknown table {block.table!r}")
    extra = [c for c in block.columns if c not in expected]
    if extra:
        raise InvalidArchive(
            f"refused: the archive's {block.table} has an unknown column {extra[0]!r}"
        )


def _check_harmless(line: str) -> None:
    encoding = _ENCODING.match(line)
    if encoding is not None and encoding.group(1).upper() not in ("UTF8", "UTF-8"):
        raise InvalidArchive(f"refused: the archive's data is in {encoding.group(1)}, not UTF8")
    if _HARMLESS.match(line) is None:
        raise InvalidArchive(f"refused: unexpected statement in the archive's data: {line[:80]!r}")


def _decoded(line: bytes) -> str:
    try:
        return line.decode("utf-8").rstrip("\n")
    except UnicodeDecodeError:
        raise InvalidArchive("refused: the archive's data is not UTF-8") from None


def _block_rows(lines: BinaryIO) -> Iterator[bytes]:
    """The lines of one COPY block, up to (not including) its `\\.` terminator."""
    for line in lines:
        if line == _END_OF_COPY:
            return
        yield line
    raise InvalidArchive("refused: the archive's data ends inside a COPY block")


async def _chunks(lines: BinaryIO) -> AsyncIterator[bytes]:
    """One COPY block's rows in chunks of about 256 KiB (the file is read as it is sent)."""
    chunk: list[bytes] = []
    size = 0
    for line in _block_rows(lines):
        chunk.append(line)
        size += len(line)
        if size >= _CHUNK:
            yield b"".join(chunk)
            chunk, size = [], 0
    if chunk:
        yield b"".join(chunk)


_OWNED_SEQUENCES = text(
    """SELECT c.relname AS sequence_name, t.relname AS table_name, a.attname AS column_name,
              s.seqmax, s.seqincrement
       FROM pg_catalog.pg_sequence s
       JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
       JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
            AND d.objid = s.seqrelid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
            AND d.deptype IN ('a', 'i')
       JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
       JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
       WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = :schema)
       ORDER BY c.relname"""
)


async def settle_sequences(conn: AsyncConnection, schema: str, quoted_schema: str) -> None:
    """After the rows are in: every sequence that feeds a column of `schema` (serial or
    identity) is moved past the column's highest value, whatever value the archive gave it (an
    archive may set it below its rows, and every insert would then fail on the primary key).
    A sequence that can give no further value refuses the archive: the tenant could never insert.

    `quoted_schema` is `schema` quoted by tenancy.naming; table, column and sequence names come
    from the catalog this code's own revisions built, and are quoted as identifiers."""
    quote = conn.dialect.identifier_preparer.quote_identifier
    for row in (await conn.execute(_OWNED_SEQUENCES, {"schema": schema})).all():
        sequence = f"{quoted_schema}.{quote(row.sequence_name)}"
        highest = await conn.scalar(
            text(
                f"SELECT max({quote(row.column_name)}) FROM {quoted_schema}.{quote(row.table_name)}"
            )
        )
        state = (await conn.execute(text(f"SELECT last_value, is_called FROM {sequence}"))).one()
        following = state.last_value + row.seqincrement if state.is_called else state.last_value
        if highest is not None and following <= highest:
            await conn.execute(
                _SET_SEQUENCE,
                {"schema": schema, "sequence": row.sequence_name, "value": highest, "called": True},
            )
            following = highest + row.seqincrement
        if row.seqincrement > 0 and following > row.seqmax:
            raise InvalidArchive(
                f"refused: the sequence {row.sequence_name!r} of {row.table_name}.{row.column_name}"
                " is exhausted: the tenant could insert no row"
            )
