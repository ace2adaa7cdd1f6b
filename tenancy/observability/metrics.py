"""Prometheus metrics of one API process, in a registry of its own (one per app).

Label cardinality is bounded: route templates (never raw paths), methods and statuses. A
`tenant` label on the request counter is opt-in (`metrics_tenant_label`) for small fleets.
"""

from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.middleware.observer import RequestRecord
from tenancy.observability.pool_metrics import PoolCollector
from tenancy.observability.registry_metrics import RegistryStats

EXPOSITION_CONTENT_TYPE = CONTENT_TYPE_LATEST

disable_created_metrics()  # no `_created` twin of every counter: half the series, same facts


class HttpMetrics:
    """A RequestObserver sink: request count and latency by method, route template and status."""

    def __init__(self, registry: CollectorRegistry, tenant_label: bool = False) -> None:
        self.tenant_label = tenant_label
        labels = ["method", "route", "status"]
        self.requests = Counter(
            "tenantry_http_requests",
            "HTTP requests answered.",
            [*labels, "tenant"] if tenant_label else labels,
            registry=registry,
        )
        self.duration = Histogram(
            "tenantry_http_request_duration_seconds",
            "Time from the request's arrival to the end of its response.",
            labels,
            registry=registry,
        )
        self._series: dict[tuple[str, str, int, str | None], tuple[Any, Any]] = {}
        """(method, route, status, tenant or None) -> the two children: exactly one entry per
        series, so as bounded as the labels (the tenant only with the tenant label)."""

    def observe(self, record: RequestRecord) -> None:
        tenant = record.tenant if self.tenant_label else None
        key = (record.method, record.route, record.status, tenant)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self._series_of(record)
        duration, requests = series
        duration.observe(record.duration)
        requests.inc()

    def _series_of(self, record: RequestRecord) -> tuple[Any, Any]:
        """The histogram's and the counter's child for this record's labels, looked up once per
        label set (prometheus_client's `labels()` validates and locks on every call)."""
        labels = (record.method, record.route, str(record.status))
        counted = (*labels, record.tenant or "") if self.tenant_label else labels
        return self.duration.labels(*labels), self.requests.labels(*counted)


class ServiceMetrics:
    """Everything /metrics shows: HTTP metrics from the start, the pool and registry counts once
    the database engine exists (bind/unbind in the lifespan)."""

    def __init__(self, tenant_label: bool = False, registry_cache_seconds: float = 15.0) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.http = HttpMetrics(self.registry, tenant_label)
        self.registry_stats = RegistryStats(registry_cache_seconds)
        self.registry.register(self.registry_stats)
        self._engine: AsyncEngine | None = None
        self._pool: PoolCollector | None = None

    def bind(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._pool = PoolCollector(engine)
        self.registry.register(self._pool)

    def unbind(self) -> None:
        if self._pool is not None:
            self.registry.unregister(self._pool)
        self._engine = self._pool = None

    async def exposition(self) -> bytes:
        """The text format; refreshes the cached registry counts first when they are stale."""
        if self._engine is not None:
            await self.registry_stats.refresh(self._engine)
        return generate_latest(self.registry)
