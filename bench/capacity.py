"""A capacity model for schema-per-tenant PostgreSQL, with its inputs taken from measurements.

Given a fleet (tenants, tables per tenant, rows per tenant, requests per second) it estimates the
catalog size, the connections and the memory per node, how many database nodes the data needs,
and how many independent deployments the catalog needs (on Citus every node holds the whole
catalog, so nodes spread data and load, not catalog). Each input comes from
`bench/fleet.json`, written by `python -m bench.fleet --write` on a real server
(per-tenant costs are the slope between its two largest sizes).

    python -m bench.capacity --tenants 250000 --rows 2000 --rps 3000

What it does not model: database CPU per request and the data's working set (measure your own
queries), skew between tenants (the rebalancer evens it out by moving whole schemas), Citus's
own per-shard metadata, and replicas.
"""

import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

MEASURED = Path(__file__).resolve().parent / "fleet.json"
MEASURED_TABLES = 3
"""Tables per tenant in the measured head schema (todos, users, songs); Alembic's version
table comes on top in every schema."""
GIB = 1024**3


@dataclass(frozen=True)
class Measured:
    """Per-tenant and per-process costs read off one fleet benchmark run."""

    pg_class_rows_per_tenant: float
    catalog_bytes_per_tenant: float
    database_bytes_per_tenant: float
    add_column_per_s: float
    noop_migrate_s_per_tenant: float
    backend_rss_anon_mib: float
    app_cpu_us_per_request: float
    largest_fleet: int

    @classmethod
    def load(cls, path: Path = MEASURED) -> "Measured":
        results = json.loads(path.read_text())
        points = sorted(results["points"], key=lambda p: p["tenants"])
        if len(points) < 2:
            raise ValueError(f"{path}: needs two fleet sizes to take slopes from")
        a, b = points[-2], points[-1]

        def slope(key: str) -> float:
            return (b[key] - a[key]) / (b["tenants"] - a["tenants"])

        return cls(
            pg_class_rows_per_tenant=slope("pg_class_rows"),
            catalog_bytes_per_tenant=slope("catalog_bytes"),
            database_bytes_per_tenant=slope("database_bytes"),
            add_column_per_s=b["add_column_per_s"],
            noop_migrate_s_per_tenant=b["noop_engine_s"] / b["tenants"],
            backend_rss_anon_mib=b["backend_rss_anon_peak_mib"],
            app_cpu_us_per_request=b["app_cpu_us"],
            largest_fleet=b["tenants"],
        )


@dataclass(frozen=True)
class Fleet:
    tenants: int
    tables: int = MEASURED_TABLES
    rows: int = 1000
    """Rows per tenant, all tables together."""
    row_bytes: int = 300
    """On disk per row, indexes included."""
    rps: float = 1000.0


@dataclass(frozen=True)
class Node:
    memory_gib: float = 64
    disk_gib: float = 1000
    catalog_share: float = 0.25
    """Of the node's memory, for keeping the catalog cached (first visits stay fast)."""
    disk_share: float = 0.7
    pool: int = 15
    """Connections per app process (pool_size + max_overflow, the defaults: 15 + 0)."""
    app_utilization: float = 0.7
    """How busy an app process (one core) may run."""
    migrate_window_minutes: float = 30
    """A migrate-all longer than this is flagged (the measured rate is one server's)."""


@dataclass(frozen=True)
class Estimate:
    catalog_rows: float
    catalog_gib: float
    schema_gib: float
    data_gib: float
    app_processes: int
    connections: int
    backend_memory_gib: float
    migrate_all_minutes: float
    noop_migrate_minutes: float
    nodes: int
    """Database nodes for the data: 1 is one server, more are Citus workers."""
    catalog_per_node_gib: float
    """Every Citus node holds the whole catalog (shell tables, synced metadata) plus the
    relations of its own schemas' shards: adding nodes does not shrink it."""
    memory_per_node_gib: float
    """The cached catalog plus the backends of the app's connections."""
    deployments: int
    """Independent Tenantry deployments (each its own database or cluster) needed for every
    node's catalog to fit its share of memory: the only remedy for the catalog."""
    extrapolated: float
    """How far beyond the largest measured fleet (1 or less: within)."""


def estimate(fleet: Fleet, node: Node, measured: Measured) -> Estimate:
    if fleet.tenants < 1 or fleet.tables < 1 or fleet.rows < 0 or fleet.rps < 0:
        raise ValueError("tenants and tables must be at least 1; rows and rps not negative")
    # Relations and catalog bytes grow with the tables a schema holds (+1: alembic_version).
    shape = (fleet.tables + 1) / (MEASURED_TABLES + 1)
    catalog = measured.catalog_bytes_per_tenant * shape * fleet.tenants
    on_disk = (measured.database_bytes_per_tenant * shape + fleet.rows * fleet.row_bytes) * (
        fleet.tenants
    )
    processes = max(
        1, math.ceil(fleet.rps * measured.app_cpu_us_per_request / 1e6 / node.app_utilization)
    )
    connections = processes * (node.pool + 1)  # + each process's LISTEN connection
    backend_gib = connections * measured.backend_rss_anon_mib / 1024
    nodes = max(1, math.ceil(on_disk / (node.disk_gib * GIB * node.disk_share)))
    catalog_per_node = catalog * (1 + 1 / nodes) if nodes > 1 else catalog
    deployments = max(1, math.ceil(catalog_per_node / (node.memory_gib * GIB * node.catalog_share)))
    return Estimate(
        catalog_rows=measured.pg_class_rows_per_tenant * shape * fleet.tenants,
        catalog_gib=catalog / GIB,
        schema_gib=measured.database_bytes_per_tenant * shape * fleet.tenants / GIB,
        data_gib=fleet.rows * fleet.row_bytes * fleet.tenants / GIB,
        app_processes=processes,
        connections=connections,
        backend_memory_gib=backend_gib,
        migrate_all_minutes=fleet.tenants * shape / measured.add_column_per_s / 60,
        noop_migrate_minutes=fleet.tenants * measured.noop_migrate_s_per_tenant / 60,
        nodes=nodes,
        catalog_per_node_gib=catalog_per_node / GIB,
        memory_per_node_gib=catalog_per_node / GIB + backend_gib,
        deployments=deployments,
        extrapolated=fleet.tenants / measured.largest_fleet,
    )


def report(fleet: Fleet, node: Node, measured: Measured, result: Estimate, source: Path) -> str:
    lines = [
        f"fleet: {fleet.tenants:,} tenants x {fleet.tables} tables, {fleet.rows:,} rows each,"
        f" {fleet.rps:,.0f} requests/s",
        f"node:  {node.memory_gib:g} GiB memory, {node.disk_gib:g} GiB disk;"
        f" inputs measured up to {measured.largest_fleet:,} tenants ({source})",
        "",
        f"catalog            {result.catalog_rows:,.0f} pg_class rows,"
        f" {result.catalog_gib:,.1f} GiB",
        f"on disk            {result.schema_gib:,.1f} GiB of empty schemas,"
        f" {result.data_gib:,.1f} GiB of data",
        f"app processes      {result.app_processes} (one core each), {result.connections}"
        " connections to the server (or the Citus coordinator)",
        f"backend memory     {result.backend_memory_gib:,.1f} GiB for those connections"
        f" ({measured.backend_rss_anon_mib:.1f} MiB each, measured under pool_max_uses 1,000;"
        " pool_max_schemas 1,000 bounds the same)",
        f"migrate-all        {result.migrate_all_minutes:,.1f} min for an add-column revision,"
        f" {result.noop_migrate_minutes:,.1f} min when nothing is pending (one server's rate)",
        f"database nodes     {result.nodes}"
        + (" (one server)" if result.nodes == 1 else " Citus workers, for the disk"),
        f"memory per node    {result.memory_per_node_gib:,.1f} GiB: catalog"
        f" {result.catalog_per_node_gib:,.1f} GiB (every node holds all of it) + backends;"
        " shared_buffers for data on top",
        f"deployments        {result.deployments}"
        + (
            ""
            if result.deployments == 1
            else f" independent ones, {math.ceil(fleet.tenants / result.deployments):,} tenants"
            " each: no node count makes the catalog fit"
        ),
    ]
    if result.migrate_all_minutes > node.migrate_window_minutes:
        lines.append(
            f"warning            migrate-all exceeds the {node.migrate_window_minutes:g}-minute"
            " window at the measured rate: raise `tenantry migrate --concurrency`"
        )
    if result.extrapolated > 1:
        lines.append(
            f"warning            {result.extrapolated:,.1f}x beyond the largest measured fleet:"
            " the catalog was linear up to it; beyond it this is extrapolation"
        )
    return "\n".join(lines)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    tenants: Annotated[int, typer.Option(help="Tenants in the fleet")],
    tables: Annotated[int, typer.Option(help="Tables per tenant")] = MEASURED_TABLES,
    rows: Annotated[int, typer.Option(help="Rows per tenant, all tables")] = 1000,
    row_bytes: Annotated[int, typer.Option(help="Bytes per row on disk, indexes included")] = 300,
    rps: Annotated[float, typer.Option(help="Requests per second, whole fleet")] = 1000.0,
    memory_gib: Annotated[float, typer.Option(help="Memory per node")] = 64,
    disk_gib: Annotated[float, typer.Option(help="Disk per node")] = 1000,
    migrate_window: Annotated[float, typer.Option(help="Minutes a migrate-all may take")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print the estimate as JSON")] = False,
    measured: Annotated[Path, typer.Option(help="Fleet benchmark results")] = MEASURED,
) -> None:
    try:
        inputs = Measured.load(measured)
        fleet = Fleet(tenants, tables, rows, row_bytes, rps)
        node = Node(memory_gib=memory_gib, disk_gib=disk_gib, migrate_window_minutes=migrate_window)
        result = estimate(fleet, node, inputs)
    except (OSError, ValueError, KeyError) as error:
        print(f"capacity: {error}", file=sys.stderr)
        raise typer.Exit(2) from None
    output: Any = (
        json.dumps(asdict(result), indent=1)
        if as_json
        else report(fleet, node, inputs, result, measured)
    )
    print(output)


if __name__ == "__main__":
    app()
