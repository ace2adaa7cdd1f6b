"""Migrate runs, recorded in the registry by the command that ran them.

`tenantry migrate` is a separate, short-lived process that no Prometheus scrapes in time, so
each run writes one row to `tenantry.migrate_runs`; every API process exposes the totals and
the last run from there. Call record_migrate_run() at the end of any run, failed or not.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

from tenancy.naming import REGISTRY_SCHEMA

if TYPE_CHECKING:  # prometheus_client and SQLAlchemy are for the API, not for `tenantry migrate`
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from sqlalchemy.ext.asyncio import AsyncConnection

_RECORD = (
    f"INSERT INTO {REGISTRY_SCHEMA}.migrate_runs (duration_seconds, failed, tenants_failed) "
    "VALUES ($1, $2, $3)"
)


async def record_migrate_run(
    conn: asyncpg.Connection, duration: float, failed: bool, tenants_failed: int | None = None
) -> None:
    """One row per run (`duration` in seconds; `tenants_failed`: when the runner knows), on a
    raw asyncpg connection: the command that records it may have no other use for SQLAlchemy."""
    await conn.execute(_RECORD, duration, failed, tenants_failed)


@dataclass(frozen=True, slots=True)
class MigrateRunTotals:
    succeeded: int
    failed: int
    duration_sum: float
    last_finished_at: datetime | None
    last_duration: float | None
    last_tenants_failed: int | None

    def metric_families(self) -> Iterator["CounterMetricFamily | GaugeMetricFamily"]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            SummaryMetricFamily,
        )

        runs = CounterMetricFamily(
            "tenantry_migrate_runs", "Migrate runs recorded in the registry.", labels=["outcome"]
        )
        runs.add_metric(["succeeded"], self.succeeded)
        runs.add_metric(["failed"], self.failed)
        yield runs
        yield SummaryMetricFamily(
            "tenantry_migrate_run_duration_seconds",
            "Wall time of the recorded migrate runs.",
            count_value=self.succeeded + self.failed,
            sum_value=self.duration_sum,
        )
        if self.last_finished_at is not None:
            yield GaugeMetricFamily(
                "tenantry_migrate_last_run_timestamp_seconds",
                "When the last migrate run finished (Unix time).",
                self.last_finished_at.timestamp(),
            )
            yield GaugeMetricFamily(
                "tenantry_migrate_last_run_duration_seconds",
                "Wall time of the last migrate run.",
                self.last_duration or 0.0,
            )
            yield GaugeMetricFamily(
                "tenantry_migrate_last_run_failed_tenants",
                "Tenants the last run failed to migrate (-1: the run failed before counting).",
                -1 if self.last_tenants_failed is None else self.last_tenants_failed,
            )


async def migrate_run_totals(conn: "AsyncConnection") -> MigrateRunTotals:
    from sqlalchemy import func, select

    from tenancy.registry import migrate_runs

    totals = (
        await conn.execute(
            select(
                func.count().filter(migrate_runs.c.failed.is_(False)),
                func.count().filter(migrate_runs.c.failed.is_(True)),
                func.coalesce(func.sum(migrate_runs.c.duration_seconds), 0.0),
            )
        )
    ).one()
    last = (
        await conn.execute(
            select(
                migrate_runs.c.finished_at,
                migrate_runs.c.duration_seconds,
                migrate_runs.c.failed,
                migrate_runs.c.tenants_failed,
            )
            .order_by(migrate_runs.c.id.desc())
            .limit(1)
        )
    ).first()
    return MigrateRunTotals(
        succeeded=totals[0],
        failed=totals[1],
        duration_sum=float(totals[2]),
        last_finished_at=last.finished_at if last else None,
        last_duration=last.duration_seconds if last else None,
        last_tenants_failed=_failed_tenants(last),
    )


def _failed_tenants(last) -> int | None:
    if last is None:
        return None
    if last.tenants_failed is not None:
        return last.tenants_failed
    return None if last.failed else 0
