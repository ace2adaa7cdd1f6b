"""Which tenants are live: the one registry query that fleet-wide work starts from.

Live means not archived (active or suspended). An archived tenant's schema has left the tenant
namespace, so `tenantry migrate` (its census), Alembic's env.py and `tenantry roles` (the
runtime grants) all leave it alone; they ask the registry this same question, here.

Plain SQL with `$1`, imported without SQLAlchemy: the migrate census runs it on asyncpg
(`tenantry migrate` with nothing to do loads no SQLAlchemy), and SQLAlchemy callers run the same
text with `exec_driver_sql` (the asyncpg dialect's paramstyle is `$n`). The request path's
directory asks a different question (live tenants with their active keys, one row per key) and
builds it with SQLAlchemy from the same predicate (`tenancy.registry.IS_LIVE`).
"""

from collections.abc import Sequence
from typing import Any

from tenancy.naming import REGISTRY_SCHEMA

LIVE_TENANTS = (
    f"SELECT id, slug, schema_name FROM {REGISTRY_SCHEMA}.tenants WHERE status <> 'archived'"
)
"""Every live tenant's id, slug and schema name; `live_tenants_query` adds the order and the
slug filter. Schema names still go through `tenancy.naming.checked_schema` where they are read."""


def live_tenants_query(slugs: Sequence[str] = ()) -> tuple[str, tuple[Any, ...]]:
    """The statement and its arguments: every live tenant (no slugs) or those of `slugs` that
    are live, in registration (id) order. asyncpg: `conn.fetch(sql, *args)`; SQLAlchemy:
    `conn.exec_driver_sql(sql, args)`."""
    if slugs:
        return LIVE_TENANTS + " AND slug = ANY($1::text[]) ORDER BY id", (list(slugs),)
    return LIVE_TENANTS + " ORDER BY id", ()
