"""The capacity model: its inputs are the committed fleet measurements, and what it estimates
follows from them (it reproduces the measured catalog, grows with the fleet). Unit-tested beside
it (tests/ never imports bench); the command itself, and its one-line errors, are run as a
process by tests/bench/test_capacity.py."""

import itertools
import json
import math
from dataclasses import replace

import pytest

from bench.capacity import MEASURED, Fleet, Measured, Node, estimate
from service.models import TenantBase

GIB = 1024**3


@pytest.fixture(scope="module")
def measured() -> Measured:
    return Measured.load()


def largest_point() -> dict:
    return max(json.loads(MEASURED.read_text())["points"], key=lambda p: p["tenants"])


def test_the_model_knows_the_measured_schema_shape() -> None:
    from bench.capacity import MEASURED_TABLES

    assert len(TenantBase.metadata.tables) == MEASURED_TABLES


def test_at_the_largest_measured_fleet_the_catalog_estimate_matches_the_measurement(
    measured: Measured,
) -> None:
    point = largest_point()
    result = estimate(Fleet(tenants=point["tenants"]), Node(), measured)
    assert result.catalog_rows == pytest.approx(point["pg_class_rows"], rel=0.05)
    assert result.catalog_gib * GIB == pytest.approx(point["catalog_bytes"], rel=0.05)
    assert result.schema_gib * GIB == pytest.approx(point["database_bytes"], rel=0.05)


def test_estimates_grow_with_the_fleet_and_its_tables(measured: Measured) -> None:
    node = Node(memory_gib=16, disk_gib=200)
    sizes = [1_000, 10_000, 100_000, 1_000_000, 10_000_000]
    results = [estimate(Fleet(tenants=n, rows=5_000), node, measured) for n in sizes]
    for counts in ([r.nodes for r in results], [r.deployments for r in results]):
        assert counts == sorted(counts) and counts[0] == 1 and counts[-1] > 1
    assert all(a.catalog_gib < b.catalog_gib for a, b in itertools.pairwise(results))
    wider = estimate(Fleet(tenants=100_000, tables=12), node, measured)
    assert wider.catalog_gib > estimate(Fleet(tenants=100_000), node, measured).catalog_gib


def test_app_processes_cover_the_request_rate(measured: Measured) -> None:
    node = Node()
    for rps in (0, 100, 5_000, 50_000):
        result = estimate(Fleet(tenants=1_000, rps=rps), node, measured)
        capacity = result.app_processes * node.app_utilization * 1e6
        assert result.app_processes >= 1
        assert capacity / measured.app_cpu_us_per_request >= rps
        assert result.connections == result.app_processes * (node.pool + 1)


def test_disk_sets_the_nodes_and_only_deployments_shrink_the_catalog(measured: Measured) -> None:
    fleet = Fleet(tenants=100_000, rows=10_000)
    small_disk = estimate(fleet, Node(memory_gib=1024, disk_gib=10), measured)
    assert small_disk.nodes > 1 and small_disk.deployments == 1
    # Every Citus node holds the whole catalog: more nodes never make it smaller.
    assert small_disk.catalog_per_node_gib >= small_disk.catalog_gib
    small_memory = estimate(fleet, Node(memory_gib=1, disk_gib=100_000), measured)
    assert small_memory.nodes == 1 and small_memory.deployments > 1
    per_deployment = estimate(
        replace(fleet, tenants=math.ceil(fleet.tenants / small_memory.deployments)),
        Node(memory_gib=1, disk_gib=100_000),
        measured,
    )
    assert per_deployment.deployments == 1
