"""`tenantry migrate status`: where the fleet stands, from one census pass (no Alembic context)."""

from collections import Counter
from dataclasses import dataclass, field

from tenancy.database import asyncpg_dsn
from tenancy.migrate.census import read_versions, registered_tenants, shared_revision
from tenancy.migrate.connections import open_connections
from tenancy.migrate.plan import make_plan
from tenancy.migrate.tracks import Tracks


@dataclass
class FleetStatus:
    shared_revision: str | None
    shared_head: str
    tenant_head: str
    tenants: int = 0
    revisions: dict[str, int] = field(default_factory=dict)
    """Tenants per revision ('base' for none), most common first."""
    behind: list[str] = field(default_factory=list)
    """Slugs of tenants not at the tenant head."""
    problems: dict[str, str] = field(default_factory=dict)
    """Slug -> why its revision is unknown or unreachable from this code."""

    @property
    def at_head(self) -> bool:
        return self.shared_revision == self.shared_head and not self.behind and not self.problems

    def record(self) -> dict[str, object]:
        return {
            "shared": {"revision": self.shared_revision, "head": self.shared_head},
            "tenant_head": self.tenant_head,
            "tenants": self.tenants,
            "revisions": self.revisions,
            "behind": self.behind,
            "problems": self.problems,
        }


async def fleet_status(url: str, tracks: Tracks, concurrency: int = 4) -> FleetStatus:
    async with open_connections(asyncpg_dsn(url), concurrency) as connections:
        status = FleetStatus(
            await shared_revision(connections[0]), tracks.shared_head, tracks.tenant_head
        )
        if status.shared_revision is None:
            return status  # no registry yet, so no tenants
        versions = await read_versions(connections, await registered_tenants(connections[0]))
    plan = make_plan(tracks.tenant, "head", versions)
    counts = Counter(v.revision or "base" for v in versions if v.problem is None)
    status.tenants = len(versions)
    status.revisions = dict(counts.most_common())
    status.behind = [tenant.slug for group in plan.groups for tenant in group.tenants]
    status.problems = {bad.tenant.slug: bad.reason for bad in plan.unplannable}
    return status
