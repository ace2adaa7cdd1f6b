"""All four request-path benchmarks in one run, sharing their throwaway databases."""

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.request_path.databases import BenchDatabases, log
from bench.request_path.measure import LoadShape
from bench.request_path.memory import run_memory
from bench.request_path.overhead import run_overhead
from bench.request_path.tenant_count import run_tenant_count

BENCHMARKS = ("overhead", "tenants", "memory")


@dataclass
class BenchOptions:
    overhead_tenants: int = 100
    sizes: list[int] = field(default_factory=lambda: [10, 1000, 10000])
    rounds: int = 8
    duration: float = 2.0
    warmup: float = 0.3
    connections: int = 8
    todos: int = 30
    memory_tenants: int | None = None
    """Defaults to the largest of sizes (its database is reused)."""
    memory_checkpoints: int = 10
    memory_pool: int = 4
    memory_transactions: int = 20000
    max_uses: list[int] = field(default_factory=lambda: [0, 5000, 1000, 250])
    reconnect_transactions: int = 200
    """Transactions per arm of the reconnect-cost measurement."""
    setup_concurrency: int = 4
    only: list[str] = field(default_factory=lambda: list(BENCHMARKS))

    @property
    def shape(self) -> LoadShape:
        return LoadShape(self.duration, self.warmup, self.connections, self.rounds, self.todos)


async def run_suite(server_url: str, options: BenchOptions) -> dict[str, Any]:
    """Every selected benchmark; the databases it made are dropped even when one fails."""
    databases = BenchDatabases(server_url, options.todos, options.setup_concurrency)
    results: dict[str, Any] = {"options": asdict(options)}
    try:
        if "overhead" in options.only:
            log(f"overhead: {options.overhead_tenants} tenants, 4 variants, 2 routes")
            results["overhead"] = await run_overhead(
                databases, options.overhead_tenants, options.shape
            )
        if "tenants" in options.only:
            log(f"tenant count: {options.sizes}")
            results["tenants"] = await run_tenant_count(databases, options.sizes, options.shape)
        if "memory" in options.only:
            tenants = options.memory_tenants or max(options.sizes)
            log(f"backend memory: {tenants} tenants, pool_max_uses {options.max_uses}")
            results["memory"] = await run_memory(
                databases,
                tenants,
                options.memory_checkpoints,
                options.memory_pool,
                options.memory_transactions,
                options.max_uses,
                options.reconnect_transactions,
            )
    finally:
        await databases.drop_all()
    return results
