"""`tenantry migrate` to head when there is nothing to do, told without Alembic or SQLAlchemy.

The full run (tenancy.migrate.run) loads both tracks with Alembic before its census; when the
census then finds the shared schema and every tenant at the heads, nothing happens. Saying so
needs only those two heads, cached beside the revisions (tenancy.migrate.heads) and keyed by
their bytes, and the same census under the same lock. Anything else (no cached heads, a tenant
behind or ahead, a schema missing, a version table without its row) returns None before anything
is reported, the lock released, and the full run takes over.
"""

import time
from collections.abc import Sequence

from tenancy.migrate.census import read_versions, registered_tenants, shared_revision
from tenancy.migrate.connections import open_connections
from tenancy.migrate.heads import Heads
from tenancy.migrate.lock import exclusive_run
from tenancy.migrate.progress import Reporter
from tenancy.migrate.results import Outcome, Summary, TenantResult


async def nothing_to_do(
    dsn: str, heads: Heads, slugs: Sequence[str], concurrency: int, reporter: Reporter
) -> Summary | None:
    """The Summary (reported as the full run reports a no-op) when every tenant (or every one of
    `slugs`) and the shared schema are at `heads`; None, with nothing reported, otherwise."""
    started = time.perf_counter()
    async with exclusive_run(dsn) as lock_conn:
        if await shared_revision(lock_conn) != heads.shared:
            return None
        async with open_connections(dsn, concurrency) as connections:
            tenants = await registered_tenants(connections[0], slugs)
            versions = await read_versions(connections, tenants)
    if any(v.problem is not None or v.revision != heads.tenant for v in versions):
        return None
    reporter.shared(heads.shared, heads.shared)
    results = [TenantResult(v.tenant, v.revision, v.revision, Outcome.CURRENT) for v in versions]
    for result in results:
        reporter.tenant(result)
    reporter.planned(0)
    summary = Summary(heads.shared, heads.shared, results, time.perf_counter() - started)
    reporter.finished(summary)
    return summary
