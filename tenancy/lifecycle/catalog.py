"""A schema's catalog as plain data, so two tenant schemas can be proven the same.

Everything PostgreSQL knows about the objects in one schema, in the words of its own deparsing
functions (`format_type`, `pg_get_expr`, `pg_get_constraintdef`, `pg_get_indexdef`, ...): the
relations, every column's position, type, nullability, default, identity and collation, every
constraint, index, sequence (with its owner), view, function, trigger, type, policy, comment and
privilege, and the Alembic version row. Object ids, physical column numbers (a dropped column
leaves a gap) and the schema's own name are left out: they differ between equal schemas.
"""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.naming import quote_schema

Catalog = dict[str, set[tuple[Any, ...]]]

_IN_SCHEMA = "JOIN pg_namespace n ON n.oid = {rel}.{col} WHERE n.nspname = :schema"

SECTIONS: dict[str, str] = {
    "schema": """
        SELECT coalesce(nspacl::text, '') AS privileges,
               coalesce(obj_description(oid, 'pg_namespace'), '')
        FROM pg_namespace WHERE nspname = :schema""",
    "relations": """
        SELECT c.relname, c.relkind::text, c.relpersistence::text, c.relrowsecurity,
               c.relforcerowsecurity, coalesce(array_to_string(c.reloptions, ','), ''),
               coalesce(obj_description(c.oid, 'pg_class'), ''),
               coalesce(c.relacl::text, '') AS privileges
        FROM pg_class c """
    + _IN_SCHEMA.format(rel="c", col="relnamespace"),
    "columns": """
        SELECT c.relname,
               row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) AS position,
               a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity::text,
               a.attgenerated::text, coalesce(co.collname, ''), a.attstorage::text,
               coalesce(col_description(c.oid, a.attnum), ''),
               coalesce(a.attacl::text, '') AS privileges
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = :schema AND a.attnum > 0 AND NOT a.attisdropped
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')""",
    "constraints": """
        SELECT coalesce(c.relname, ''), con.conname, con.contype::text,
               pg_get_constraintdef(con.oid), con.condeferrable, con.condeferred,
               con.convalidated
        FROM pg_constraint con
        LEFT JOIN pg_class c ON c.oid = con.conrelid """
    + _IN_SCHEMA.format(rel="con", col="connamespace"),
    "indexes": """
        SELECT ci.relname, pg_get_indexdef(i.indexrelid), i.indisprimary, i.indisclustered,
               i.indisvalid, i.indisreplident
        FROM pg_index i
        JOIN pg_class ci ON ci.oid = i.indexrelid """
    + _IN_SCHEMA.format(rel="ci", col="relnamespace"),
    "sequences": """
        SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmax,
               s.seqmin, s.seqcache, s.seqcycle, pg_sequence_last_value(c.oid) AS last_value,
               coalesce(owner.relname || '.' || a.attname, ''), coalesce(dep.deptype::text, '')
        FROM pg_sequence s
        JOIN pg_class c ON c.oid = s.seqrelid
        LEFT JOIN pg_depend dep ON dep.classid = 'pg_class'::regclass AND dep.objid = c.oid
             AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
        LEFT JOIN pg_class owner ON owner.oid = dep.refobjid
        LEFT JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid """
    + _IN_SCHEMA.format(rel="c", col="relnamespace"),
    "views": """
        SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c """
    + _IN_SCHEMA.format(rel="c", col="relnamespace")
    + " AND c.relkind IN ('v', 'm')",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), p.prokind::text,
               CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) ELSE '' END,
               coalesce(p.proacl::text, '') AS privileges
        FROM pg_proc p """
    + _IN_SCHEMA.format(rel="p", col="pronamespace"),
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text
        FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid """
    + _IN_SCHEMA.format(rel="c", col="relnamespace")
    + " AND NOT t.tgisinternal",
    "types": """
        SELECT t.typname, t.typtype::text, format_type(t.typbasetype, t.typtypmod),
               t.typnotnull, coalesce(t.typdefault, ''),
               coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                         FROM pg_enum e WHERE e.enumtypid = t.oid), '')
        FROM pg_type t """
    + _IN_SCHEMA.format(rel="t", col="typnamespace"),
    "policies": """
        SELECT c.relname, p.polname, p.polcmd::text, p.polpermissive,
               p.polroles::regrole[]::text, coalesce(pg_get_expr(p.polqual, p.polrelid), ''),
               coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
        FROM pg_policy p
        JOIN pg_class c ON c.oid = p.polrelid """
    + _IN_SCHEMA.format(rel="c", col="relnamespace"),
}


VOLATILE_COLUMNS = frozenset({"privileges", "last_value"})
"""Columns (by their alias above) that no revision decides: grants depend on when `roles setup`
ran, a sequence's last value on the rows written. `shape_only` leaves them out."""


async def schema_catalog(
    conn: AsyncConnection, schema: str, *, shape_only: bool = False
) -> Catalog:
    """Every section of one tenant schema's catalog, with the schema's name factored out.

    shape_only: without VOLATILE_COLUMNS, to compare a living tenant with the schema its stamped
    revision describes. A schema without a version table has an empty `alembic_version` section.
    """
    catalog: Catalog = {}
    for section, sql in SECTIONS.items():
        result = await conn.execute(text(sql), {"schema": schema})
        keep = [
            index
            for index, name in enumerate(result.keys())
            if not (shape_only and name in VOLATILE_COLUMNS)
        ]
        catalog[section] = {
            _without_schema_name(tuple(row[i] for i in keep), schema) for row in result
        }
    table = f"{quote_schema(schema)}.alembic_version"
    versioned = await conn.scalar(text("SELECT to_regclass(:table)"), {"table": table})
    version = text(f"SELECT version_num FROM {table}")
    catalog["alembic_version"] = (
        {tuple(row) for row in await conn.execute(version)} if versioned is not None else set()
    )
    return catalog


def catalog_differences(expected: Catalog, actual: Catalog) -> list[str]:
    """One line per object that differs; empty when the two schemas are the same."""
    lines: list[str] = []
    for section in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(section, set()), actual.get(section, set())
        lines += _describe(section, "missing", want - got)
        lines += _describe(section, "unexpected", got - want)
    return lines


def _describe(section: str, kind: str, rows: Iterable[tuple[Any, ...]]) -> list[str]:
    return [f"{section}: {kind} {row!r}" for row in sorted(rows, key=repr)]


def _without_schema_name(row: tuple[Any, ...], schema: str) -> tuple[Any, ...]:
    """Deparsed SQL names the schema ('tenant_a.todos_id_seq'); equal schemas differ only there."""
    return tuple(
        value.replace(f'"{schema}".', "<schema>.").replace(f"{schema}.", "<schema>.")
        if isinstance(value, str)
        else value
        for value in row
    )
