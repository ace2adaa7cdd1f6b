"""Tenants by status and migrate runs, read from the registry at most once per cache period.

However many scrapers ask, one query pass runs per `cache_seconds`; concurrent scrapes of a
stale cache wait for the same refresh instead of each querying.
"""

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenancy.observability.migrate_runs import MigrateRunTotals, migrate_run_totals
from tenancy.registry import TENANT_STATUSES, tenant_counts_by_status

log = logging.getLogger(__name__)


@dataclass
class RegistrySnapshot:
    tenants_by_status: dict[str, int] = field(default_factory=dict)
    migrate_runs: MigrateRunTotals | None = None


async def read_snapshot(conn: AsyncConnection) -> RegistrySnapshot:
    return RegistrySnapshot(
        tenants_by_status=await tenant_counts_by_status(conn),
        migrate_runs=await migrate_run_totals(conn),
    )


class RegistryStats(Collector):
    def __init__(self, cache_seconds: float) -> None:
        self.cache_seconds = cache_seconds
        self.snapshot = RegistrySnapshot()
        self.refreshes = 0
        self.errors = 0
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def refresh(self, engine: AsyncEngine) -> None:
        if time.monotonic() < self._expires:
            return
        async with self._lock:
            if time.monotonic() < self._expires:
                return  # another scrape refreshed it while this one waited
            try:
                async with engine.connect() as conn:
                    self.snapshot = await read_snapshot(conn)
            except (OSError, SQLAlchemyError) as exc:
                self.errors += 1
                log.warning("registry metrics unavailable: %s", type(exc).__name__)
            self.refreshes += 1
            self._expires = time.monotonic() + self.cache_seconds

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | SummaryMetricFamily]:
        tenants = GaugeMetricFamily("tenantry_tenants", "Tenants by status.", labels=["status"])
        counts = {status: 0 for status in TENANT_STATUSES} | self.snapshot.tenants_by_status
        for status, count in sorted(counts.items()):
            tenants.add_metric([status], count)
        yield tenants
        yield CounterMetricFamily(
            "tenantry_registry_stats_errors",
            "Failed reads of the registry counts (the last good values are kept).",
            value=self.errors,
        )
        if self.snapshot.migrate_runs is not None:
            yield from self.snapshot.migrate_runs.metric_families()
