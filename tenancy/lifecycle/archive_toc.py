"""An archive's table of contents (`pg_restore --list`), checked against an allow-list.

An import never runs the archive's SQL (see `archive_data`); it only reads its rows. Still, the
table of contents is checked first, so that an archive holding anything but one tenant schema's
tables, sequences, indexes, constraints and data is refused with one line naming the first
offending entry: functions, procedures, triggers, views, rules, policies, event triggers,
extensions, large objects, types, anything outside the one schema.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from tenancy.lifecycle.errors import LifecycleError
from tenancy.naming import is_archive_schema, is_tenant_schema


class InvalidArchive(LifecycleError):
    """The file is not an export of exactly one tenant schema, or holds more than its data."""


_ENTRY = re.compile(r"^(\d+); (\d+) (\d+) (.*)$")

SCHEMA_OBJECTS = ("TABLE", "SEQUENCE", "INDEX", "CONSTRAINT", "FK CONSTRAINT")
"""Objects of the tenant schema an archive may name; each must exist in the expected catalog."""
DATA = ("TABLE DATA", "SEQUENCE SET")
"""The only entries whose contents are used: rows of expected tables, values of sequences."""
IGNORED = ("ACL", "DEFAULT ACL", "COMMENT", "DEFAULT", "SEQUENCE OWNED BY", "TYPE", "DOMAIN")
"""Allowed on objects of the one schema but never restored (the schema is built from this code's
own revisions); TYPE and DOMAIN only when the expected catalog has that type."""
ALLOWED = ("SCHEMA", *SCHEMA_OBJECTS, *DATA, *IGNORED)
_BY_LENGTH = sorted(ALLOWED, key=len, reverse=True)


@dataclass(frozen=True, slots=True)
class TocEntry:
    """One line of `pg_restore --list`: `<id>; <catalog oid> <oid> <kind> <schema> <rest>`."""

    line: str
    kind: str
    """pg_dump's object description (TABLE, TABLE DATA, FUNCTION, ...); '' when not allowed."""
    namespace: str
    rest: str
    """The tag followed by the owner ("todos postgres", "todos pk_todos postgres")."""

    def names(self, tag: str) -> bool:
        """Whether this entry's tag is `tag` (the owner, if any, follows after a space)."""
        return self.rest == tag or self.rest.startswith(tag + " ")

    def describe(self) -> str:
        return self.line.split(";", 1)[1].strip()[:120]


@dataclass(frozen=True, slots=True)
class ArchiveToc:
    schema: str
    """The one tenant (or archived tenant) schema the archive holds."""
    entries: tuple[TocEntry, ...]

    def data_entries(self) -> list[TocEntry]:
        return [entry for entry in self.entries if entry.kind in DATA]


def parse_toc(listing: str) -> list[TocEntry]:
    """Every entry of a `pg_restore --list` (comment lines start with ';')."""
    entries = []
    for line in listing.splitlines():
        match = _ENTRY.match(line)
        if match is None:
            continue
        body = match.group(4)
        kind = next((k for k in _BY_LENGTH if body.startswith(k + " ")), "")
        namespace, _, rest = body[len(kind) + 1 :].partition(" ") if kind else ("", "", body)
        entries.append(TocEntry(line, kind, namespace, rest))
    return entries


def refused_entries(entries: Iterable[TocEntry]) -> list[TocEntry]:
    """Entries no tenant export has, in archive order: empty for an honest export.

    Refused: any kind outside the allow-list; a second SCHEMA or one that is not a tenant (or
    archived tenant) schema; anything in another schema; an ACL or COMMENT on anything but the
    schema or its objects.
    """
    entries = list(entries)
    schemas = [e for e in entries if e.kind == "SCHEMA" and e.namespace == "-"]
    schema = _tenant_schema_of(schemas[0]) if schemas else None
    refused: list[TocEntry] = []
    for entry in entries:
        if entry.kind == "SCHEMA":
            ok = entry is schemas[0] and schema is not None and entry.namespace == "-"
        elif entry.namespace == "-":  # ACL or COMMENT on the schema itself
            ok = (
                entry.kind in ("ACL", "COMMENT")
                and schema is not None
                and entry.names(f"SCHEMA {schema}")
            )
        else:
            ok = bool(entry.kind) and schema is not None and entry.namespace == schema
        if not ok:
            refused.append(entry)
    return refused


def checked_toc(listing: str) -> ArchiveToc:
    """The archive's entries once every one is allowed; InvalidArchive names the first that
    is not (or says that the archive holds no single tenant schema)."""
    entries = parse_toc(listing)
    schemas = [e for e in entries if e.kind == "SCHEMA"]
    if not schemas or _tenant_schema_of(schemas[0]) is None:
        found = [e.describe() for e in schemas] or "none"
        raise InvalidArchive(f"not a tenant export: expected one tenant schema, found {found}")
    refused = refused_entries(entries)
    if refused:
        raise InvalidArchive(f"refused: the archive holds {refused[0].describe()!r}")
    return ArchiveToc(_tenant_schema_of(schemas[0]) or "", tuple(entries))


def _tenant_schema_of(entry: TocEntry) -> str | None:
    """The schema a SCHEMA entry creates, if it is a tenant or archived tenant schema."""
    name = entry.rest.split(" ", 1)[0]
    if entry.namespace == "-" and (is_tenant_schema(name) or is_archive_schema(name)):
        return name
    return None


def unexpected_entries(toc: ArchiveToc, expected: "ExpectedObjects") -> list[TocEntry]:
    """Entries naming an object that the expected catalog of the archive's revision lacks."""
    return [entry for entry in toc.entries if not expected.has(entry)]


@dataclass(frozen=True, slots=True)
class ExpectedObjects:
    """What the schema built from this code's revisions holds: the names an entry may use."""

    relations: frozenset[tuple[str, str]]
    """(name, relkind): 'r' tables, 'S' sequences, 'i' indexes."""
    constraints: frozenset[tuple[str, str]]
    """(table, constraint)."""
    columns: frozenset[tuple[str, str]]
    types: frozenset[str]

    def has(self, entry: TocEntry) -> bool:
        kind = entry.kind
        if kind in ("TABLE", "TABLE DATA"):
            return self._relation(entry, "r", "p")
        if kind in ("SEQUENCE", "SEQUENCE SET", "SEQUENCE OWNED BY"):
            return self._relation(entry, "S")
        if kind == "INDEX":
            return self._relation(entry, "i", "I")
        if kind in ("CONSTRAINT", "FK CONSTRAINT"):
            return any(entry.names(f"{table} {name}") for table, name in self.constraints)
        if kind == "DEFAULT":
            return any(entry.names(f"{table} {column}") for table, column in self.columns)
        if kind in ("TYPE", "DOMAIN"):
            return any(entry.names(name) for name in self.types)
        return kind in ("SCHEMA", "ACL", "DEFAULT ACL", "COMMENT")

    def _relation(self, entry: TocEntry, *relkinds: str) -> bool:
        return any(entry.names(name) for name, kind in self.relations if kind in relkinds)
