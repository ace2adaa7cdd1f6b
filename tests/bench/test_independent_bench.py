"""bench/independent (issue 17) still runs: the baseline app, the interleaved comparison and the
per-layer variants produce numbers at tiny sizes. Timings are never asserted here. Each runs as
`python -m bench.independent[.layer_cost|.pool]`, its own process, and its JSON is read back; the
benchmark's own parts are unit-tested beside it (bench/independent/test_independent.py)."""

import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.paths import PROJECT_ROOT

TINY = ["--duration", "0.3", "--warmup", "0.1", "--connections", "2", "--rounds", "1"]
TINY += ["--todos", "5"]
BASELINE = "baseline"
SHIPPED = "tenantry as shipped"


async def bench(module: str, *args: str) -> None:
    run = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout + run.stderr


async def test_tenantry_and_the_baseline_are_measured_in_one_run(
    database: str, tmp_path: Path
) -> None:
    await bench("bench.independent", "--tenants", "2", *TINY, "--out", str(tmp_path))
    results = json.loads((tmp_path / "independent_ratios.json").read_text())
    for route in ("get_todo", "list_todos"):
        variants = results["summary"][route]
        assert set(variants) == {"tenantry", "tenantry, access log off", BASELINE}
        for numbers in variants.values():
            assert numbers["throughput"] > 0 and numbers["errors"] == 0
            assert math.isfinite(numbers["ratio"]) and numbers["server_cpu_us"] > 0
    assert len(results["load_average"]) == 2


async def test_the_layer_costs_are_measured_in_process(database: str, tmp_path: Path) -> None:
    options = ["--tenants", "2", "--requests", "20", "--blocks", "1", "--todos", "5"]
    await bench("bench.independent.layer_cost", *options, "--out", str(tmp_path))
    results = json.loads((tmp_path / "layer_cost.json").read_text())
    layers = results["layers"]
    access_logs = {f"access log {mode}" for mode in results["access_log_us"]}
    without = {f"without {n}" for n in layers}
    assert set(results["cpu_us"]) == {SHIPPED, BASELINE} | without | access_logs
    assert all(cpu > 0 for cpu in results["cpu_us"].values())
    assert "all of them, stacked" in results["isolated_us"]
    assert len(access_logs) == 2 and all(us > 0 for us in results["access_log_us"].values())


async def test_the_pool_variants_are_measured(database: str, tmp_path: Path) -> None:
    options = ["--tenants", "2", "--requests", "40", "--repeats", "1", "--connections", "2"]
    await bench("bench.independent.pool", *options, "--out", str(tmp_path))
    results = json.loads((tmp_path / "independent_pool.json").read_text())
    assert len(results["medians"]) == 4
    for numbers in results["medians"].values():
        assert numbers["new_connections_per_1000"] >= 0
        assert numbers["app_cpu_us"] > 0 and numbers["db_cpu_us"] >= 0


def valgrind() -> None:
    """Skips the test where valgrind (with its callgrind.h) or a C compiler is missing; fails
    under CI, whose .ci/run installs valgrind."""
    header = Path("/usr/include/valgrind/callgrind.h")
    if shutil.which("valgrind") and shutil.which("cc") and header.exists():
        return
    reason = "no valgrind (and callgrind.h) or cc here: `apt-get install valgrind gcc`"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


async def test_instructions_are_counted_under_valgrind(database: str, tmp_path: Path) -> None:
    """Two variants, a few requests each: each count is read back from callgrind's own output,
    and Tenantry as shipped executes more than the baseline (it does strictly more work per
    request: the middleware, the key check, the access log)."""
    valgrind()
    options = ["--tenants", "2", "--requests", "20", "--todos", "5", "--only", "baseline,shipped"]
    await bench("bench.independent.instructions", *options, "--out", str(tmp_path))
    counts = json.loads((tmp_path / "instructions.json").read_text())["instructions_per_request"]
    assert set(counts) == {"baseline", "shipped"}
    assert 0 < counts["baseline"] < counts["shipped"]
