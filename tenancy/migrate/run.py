"""`tenantry migrate`: the shared schema, then every tenant, as fast as the DDL allows.

    lock    one run per database (advisory lock held for the run)
    shared  the registry schema to head, through Alembic
    plan    every tenant's revision in one pass; group by (from, to); skip those at target
    render  each group's SQL once (Alembic offline mode)
    run     each tenant in its own transaction, a few connections side by side;
            (the fast path, fast_path.py); groups that need a live connection go through
            Alembic contexts, one at a time (the Alembic path, alembic_path.py)
    again   plan the tenants not yet settled (moved during the run, or onboarded by a process
            that still had the old head) until nothing is left

A tenant is either fully at its target or untouched, so a run killed at any point is finished
by running it again.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from tenancy.citus import is_citus, statements_for
from tenancy.database import asyncpg_dsn
from tenancy.migrate.alembic_path import run_in_contexts
from tenancy.migrate.census import read_versions, registered_tenants, shared_revision
from tenancy.migrate.connections import alembic_connection, open_connections, side_by_side
from tenancy.migrate.fast_path import Job, run_jobs
from tenancy.migrate.lock import exclusive_run
from tenancy.migrate.plan import make_plan
from tenancy.migrate.progress import Reporter
from tenancy.migrate.render import render_sql
from tenancy.migrate.results import LockPolicy, Outcome, Summary, TenantResult
from tenancy.migrate.targets import Step, check_target
from tenancy.migrate.tracks import Tracks, upgrade_shared

MAX_PASSES = 5
"""Planning passes per run; a tenant still moving after that many is reported as failed."""


@dataclass(frozen=True)
class RunOptions:
    target: str = "head"
    slugs: tuple[str, ...] = ()
    concurrency: int = 4
    fail_fast: bool = False
    lock: LockPolicy = field(default_factory=LockPolicy)


async def migrate_fleet(
    url: str, tracks: Tracks, options: RunOptions, reporter: Reporter
) -> Summary:
    """Run a whole migration; raises MigrationInProgress when another run holds the lock."""
    check_target(tracks.tenant, options.target)
    started = time.perf_counter()
    async with exclusive_run(asyncpg_dsn(url)) as lock_conn:
        shared_from = await shared_revision(lock_conn)
        if shared_from != tracks.shared_head:
            await upgrade_shared_schema(url, tracks)
        reporter.shared(shared_from, tracks.shared_head)
        async with open_connections(asyncpg_dsn(url), options.concurrency) as connections:
            results = await _FleetRun(url, tracks, options, reporter, connections).run()
    summary = Summary(shared_from, tracks.shared_head, results, time.perf_counter() - started)
    reporter.finished(summary)
    return summary


async def upgrade_shared_schema(url: str, tracks: Tracks) -> None:
    async with alembic_connection(url) as conn, conn.begin():
        await conn.run_sync(upgrade_shared, tracks)


class _FleetRun:
    """The passes of one run, and the ledger of how each tenant ended."""

    def __init__(
        self,
        url: str,
        tracks: Tracks,
        options: RunOptions,
        reporter: Reporter,
        connections: Sequence[asyncpg.Connection],
    ) -> None:
        self.url = url
        self.script = tracks.tenant
        self.options = options
        self.reporter = reporter
        self.connections = list(connections)
        self.settled: dict[str, TenantResult] = {}
        self.unsettled: dict[str, Job] = {}
        self.failures = 0
        self.citus = False

    async def run(self) -> list[TenantResult]:
        self.citus = await is_citus(self.connections[0])
        for _ in range(MAX_PASSES):
            fast, careful = await self._plan()
            self.reporter.planned(len(self.unsettled))
            if not self.unsettled or self._stopped():
                break
            await self._execute(fast, careful)
            if self._stopped():
                break
        for job in list(self.unsettled.values()):
            self._settle(self._unfinished(job))
        return list(self.settled.values())

    async def _plan(self) -> tuple[list[Job], list[Job]]:
        """Plan the tenants not settled yet (all of them on the first pass): the jobs of the
        fast path, and those that need a live Alembic context."""
        tenants = await registered_tenants(self.connections[0], self.options.slugs)
        fresh = [t for t in tenants if t.schema not in self.settled]
        plan = make_plan(
            self.script, self.options.target, await read_versions(self.connections, fresh)
        )
        for version in plan.current:
            tenant, revision = version.tenant, version.revision
            self._settle(TenantResult(tenant, revision, revision, Outcome.CURRENT))
        for bad in plan.unplannable:
            outcome = Outcome.MISSING if bad.schema_missing else Outcome.FAILED
            self._settle(TenantResult(bad.tenant, bad.revision, None, outcome, bad.reason))
        fast = [
            Job(tenant, group.step, sql, statements_for(sql, self.citus))
            for group, sql in ((g, self._render(g.step)) for g in plan.groups if not g.live)
            for tenant in group.tenants
        ]
        careful = [Job(t, g.step, "") for g in plan.groups if g.live for t in g.tenants]
        self.unsettled = {job.tenant.schema: job for job in (*fast, *careful)}
        return fast, careful

    async def _execute(self, fast: list[Job], careful: list[Job]) -> None:
        policy = self.options.lock
        lanes = run_jobs(self.connections, fast, policy, self._record, self._stopped)
        if not careful:
            await lanes
            return
        async with alembic_connection(self.url) as conn:
            one_by_one = run_in_contexts(
                conn, self.script, careful, policy, self._record, self._stopped
            )
            await side_by_side(lanes, one_by_one)

    def _render(self, step: Step) -> str:
        """Once per group: tenant revisions name no schema, so the SQL fits every tenant."""
        return render_sql(self.script, step.from_rev, step.destination, downgrade=step.downgrade)

    def _record(self, result: TenantResult) -> None:
        if result.outcome is Outcome.MOVED:
            return  # untouched; planned again on the next pass
        del self.unsettled[result.tenant.schema]
        self._settle(result)

    def _settle(self, result: TenantResult) -> None:
        self.settled[result.tenant.schema] = result
        if result.outcome is Outcome.FAILED:
            self.failures += 1
        self.reporter.tenant(result)

    def _unfinished(self, job: Job) -> TenantResult:
        if self._stopped():
            outcome, error = Outcome.SKIPPED, "not attempted after a failure (--fail-fast)"
        else:
            outcome, error = Outcome.FAILED, f"its revision kept changing in {MAX_PASSES} passes"
        return TenantResult(job.tenant, job.step.from_rev, job.step.to_rev, outcome, error)

    def _stopped(self) -> bool:
        return self.options.fail_fast and self.failures > 0
