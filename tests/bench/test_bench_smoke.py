"""A smoke run of every request-path benchmark with tiny sizes: it runs end to end (real
uvicorn, real load generator, real databases) and produces numbers. Timings are never asserted.
The benchmark runs as `python -m bench.request_path`, its own process; its JSON is read back."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from service.paths import PROJECT_ROOT

SIZES = [2, 3]
ROUNDS = 1
MAX_USES = [0, 10]
TINY = {
    "--overhead-tenants": 2,
    "--sizes": ",".join(map(str, SIZES)),
    "--rounds": ROUNDS,
    "--duration": 0.3,
    "--warmup": 0.1,
    "--connections": 2,
    "--todos": 5,
    "--memory-checkpoints": 2,
    "--memory-pool": 2,
    "--memory-transactions": 60,
    "--max-uses": ",".join(map(str, MAX_USES)),
    "--reconnect-transactions": 5,
}


def measured(numbers: dict) -> bool:
    return numbers["throughput"] > 0 and math.isfinite(numbers["p99_ms"]) and numbers["errors"] == 0


def test_every_request_path_benchmark_produces_numbers(database: str, tmp_path: Path) -> None:
    options = [str(part) for pair in TINY.items() for part in pair]
    out = ["--out", str(tmp_path), "--figures", str(tmp_path / "figures")]
    run = subprocess.run(
        [sys.executable, "-m", "bench.request_path", *options, *out],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads((tmp_path / "request_path.json").read_text())

    overhead = results["overhead"]
    assert set(overhead["summary"]) == {"get_todo", "list_todos"}
    for variants in overhead["summary"].values():
        assert set(variants) == {"tenantry", "set_config_statement", "naive_set", "no_tenancy"}
        assert all(measured(numbers) for numbers in variants.values())
    # the in-memory registry: one load at start-up, whatever the tenant count (it was one query
    # per tenant on first use before the registry was kept in memory)
    assert overhead["registry"]["queries_during_warm_up"] == 1
    assert overhead["registry"]["queries_during_measurement"] == 0

    tenants = results["tenants"]
    assert set(tenants["summary"]) == {str(size) for size in SIZES}  # JSON keys are text
    assert all(measured(numbers) for numbers in tenants["summary"].values())
    for size, samples in tenants["registry"].items():
        assert [sample["queries"] for sample in samples] == [1] * (1 + ROUNDS), size

    memory = results["memory"]
    assert [p["tenants_touched"] for p in memory["growth"]] == [0, 1, 2, 3]
    assert all(p["contexts_mib"] > 0 for p in memory["growth"])
    assert math.isfinite(memory["contexts_kib_per_tenant"]) and math.isfinite(
        memory["reconnect_ms"]
    )
    assert [p["pool_max_uses"] for p in memory["policies"]] == MAX_USES
    assert all(p["transactions_per_second"] > 0 for p in memory["policies"])

    tables = (tmp_path / "request_path.md").read_text()
    for heading in ("Overhead", "Tenant count", "Registry lookups", "Backend memory"):
        assert f"### {heading}" in tables
