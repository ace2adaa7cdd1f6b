"""`tenantry migrate status --verify`: does each tenant's catalog match its stamped revision?

A tenant's version row says which revision its tables are at; nothing in the census checks that
the tables agree (a process that stamped a head it did not build, DDL run by hand). Here each
tenant's catalog (`lifecycle.catalog`, shape only: no grants, no sequence positions) is compared
with the catalog real Alembic builds for the same revision in a scratch schema, inside a
transaction that is rolled back. One reference per distinct revision, then 11 catalog queries
per tenant, on one connection: minutes at 10,000 tenants, so it is an explicit option.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.lifecycle.catalog import Catalog, catalog_differences, schema_catalog
from tenancy.migrate.alembic_env import AUTOGENERATE_SCHEMA
from tenancy.migrate.census import TenantVersion, read_versions, registered_tenants
from tenancy.migrate.connections import alembic_connection
from tenancy.migrate.targets import UnknownRevision, revision_of
from tenancy.migrate.tracks import Tracks, run_track
from tenancy.naming import quote_schema
from tenancy.search_path import enter_schema

SCRATCH_SCHEMA = AUTOGENERATE_SCHEMA
"""Where references are built (a reserved slug's schema, so no tenant can own it)."""


@dataclass(frozen=True, slots=True)
class Drift:
    """A tenant whose tables differ from what its stamped revision builds."""

    slug: str
    revision: str | None
    differences: list[str]
    """One line per differing catalog object (see catalog_differences)."""

    def line(self) -> str:
        """One line for the operator: how many objects differ, and the first of them."""
        return (
            f"drifted {self.slug}: stamped {self.revision or 'base'} but "
            f"{len(self.differences)} catalog difference(s), first: {self.differences[0]}"
        )

    def record(self) -> dict[str, object]:
        return {"tenant": self.slug, "revision": self.revision, "differences": self.differences}


async def verify_fleet(url: str, tracks: Tracks, slugs: Sequence[str] = ()) -> list[Drift]:
    """Every registered, non-archived tenant (or the named ones) whose catalog differs from its
    revision's, in registry order. Tenants whose revision cannot be read or is unknown to this
    code are left to `fleet_status`'s problems (nothing to compare them with)."""
    async with alembic_connection(url) as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        versions = await read_versions([raw], await registered_tenants(raw, slugs))
        await conn.rollback()
        references: dict[str | None, Catalog] = {}
        drifted: list[Drift] = []
        for version in versions:
            if not _comparable(tracks, version):
                continue
            if version.revision not in references:
                references[version.revision] = await reference_catalog(
                    conn, tracks, version.revision
                )
            actual = await schema_catalog(conn, version.tenant.schema, shape_only=True)
            await conn.rollback()  # no snapshot or lock held from one tenant to the next
            differences = catalog_differences(references[version.revision], actual)
            if differences:
                drifted.append(Drift(version.tenant.slug, version.revision, differences))
    return drifted


async def reference_catalog(conn: AsyncConnection, tracks: Tracks, revision: str | None) -> Catalog:
    """The catalog real Alembic builds for `revision` from nothing (None: an empty schema),
    built in a scratch schema inside a transaction that is rolled back."""
    async with conn.begin() as transaction:
        await conn.exec_driver_sql(f"CREATE SCHEMA {quote_schema(SCRATCH_SCHEMA)}")
        await conn.run_sync(enter_schema, SCRATCH_SCHEMA)
        if revision is not None:
            await conn.run_sync(run_track, tracks.tenant, SCRATCH_SCHEMA, revision)
        catalog = await schema_catalog(conn, SCRATCH_SCHEMA, shape_only=True)
        await transaction.rollback()
    return catalog


def _comparable(tracks: Tracks, version: TenantVersion) -> bool:
    if version.problem is not None:
        return False
    if version.revision is None:
        return True
    try:
        revision_of(tracks.tenant, version.revision)
    except UnknownRevision:
        return False
    return True
