"""The migrate benchmark still runs (tiny sizes), so it cannot rot between real runs."""

import os
import subprocess
import sys

from service.paths import PROJECT_ROOT


def test_the_benchmark_runs_every_method_on_a_tiny_fleet(database: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.migrate_all", "--sizes", "6", "--cookbook-sample", "1"],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for method in (
        "cookbook loop (sample)",
        "raw asyncpg DDL x1",
        "raw asyncpg DDL x4",
        "tenantry migrate x4",
        "no-op: tenantry migrate (engine)",
        "no-op: `tenantry migrate` command",
    ):
        assert method in result.stdout, method
    assert "\n| 6 | " in result.stdout
