"""`tenantry migrate --sql`: the SQL a run would execute, per tenant, touching nothing.

Alembic's offline mode renders each group's SQL once; the database is only read (registry and
version rows, no lock taken), so the output matches what the run would do right now.
"""

from typing import TextIO

from tenancy.database import asyncpg_dsn
from tenancy.migrate.census import read_versions, registered_tenants, shared_revision
from tenancy.migrate.connections import open_connections
from tenancy.migrate.plan import Group, make_plan
from tenancy.migrate.render import render_sql
from tenancy.migrate.targets import Step, check_target
from tenancy.migrate.tracks import Tracks
from tenancy.naming import REGISTRY_SCHEMA
from tenancy.one_line import first_line_with_type
from tenancy.search_path import psql_enter


async def print_sql(
    url: str, tracks: Tracks, target: str, slugs: tuple[str, ...], out: TextIO
) -> None:
    check_target(tracks.tenant, target)
    async with open_connections(asyncpg_dsn(url), 1) as connections:
        shared_from = await shared_revision(connections[0])
        tenants = [] if shared_from is None else await registered_tenants(connections[0], slugs)
        versions = await read_versions(connections, tenants) if tenants else []
    if shared_from != tracks.shared_head:
        out.write(f"-- shared schema {REGISTRY_SCHEMA}: {shared_from or 'base'} -> head\n")
        out.write(f"CREATE SCHEMA IF NOT EXISTS {REGISTRY_SCHEMA};\n")
        out.write(
            render_sql(tracks.shared, shared_from, "head", version_table_schema=REGISTRY_SCHEMA)
        )
    plan = make_plan(tracks.tenant, target, versions)
    for group in plan.groups:
        sql = _group_sql(tracks, group)
        for tenant in group.tenants:
            out.write(f"-- tenant {tenant.slug}: {group.step.label()}\n")
            out.write(_in_tenant_transaction(tenant.schema, sql))
    for bad in plan.unplannable:
        out.write(f"-- tenant {bad.tenant.slug}: cannot be planned: {bad.reason}\n")
    out.write(f"-- {len(plan.current)} tenant(s) already at the target\n")


def _group_sql(tracks: Tracks, group: Group) -> str:
    step: Step = group.step
    if not group.live:
        return render_sql(tracks.tenant, step.from_rev, step.destination, downgrade=step.downgrade)
    note = "-- this step reads the database, so `tenantry migrate` runs it through Alembic\n"
    try:
        sql = render_sql(tracks.tenant, step.from_rev, step.destination, downgrade=step.downgrade)
    except Exception as exc:  # revision code that cannot run without a database
        return note + f"-- it cannot be rendered offline: {first_line_with_type(exc)}\n"
    return note + "-- its offline SQL, which may differ per tenant:\n" + sql


def _in_tenant_transaction(schema: str, sql: str) -> str:
    """The rendered SQL under the tenant's transaction-scoped search_path, ready for psql."""
    return f"BEGIN;\n{psql_enter(schema)}{sql}COMMIT;\n\n"
