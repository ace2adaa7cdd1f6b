"""The SQLAlchemy connection pool, read at scrape time (nothing is counted on the hot path)."""

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine


class PoolCollector(Collector):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self.engine.pool
        connections = GaugeMetricFamily(
            "tenantry_db_pool_connections",
            "Connections this process holds open, by state (in_use: checked out by a request).",
            labels=["state"],
        )
        checked_out = getattr(pool, "checkedout", lambda: 0)()
        idle = getattr(pool, "checkedin", lambda: 0)()
        connections.add_metric(["in_use"], checked_out)
        connections.add_metric(["idle"], idle)
        yield connections
        size = getattr(pool, "size", None)
        if size is not None:
            yield GaugeMetricFamily(
                "tenantry_db_pool_size", "Connections the pool keeps (TENANTRY_POOL_SIZE).", size()
            )
