"""bench/pgbouncer.py still runs (a few requests), so it cannot rot between real runs. Its rates
are never asserted; the way through PgBouncer is measured only where pgbouncer is installed."""

import os
import subprocess
import sys

from service.paths import PROJECT_ROOT
from tenancy.testing.pgbouncer import installed


def test_the_pgbouncer_benchmark_measures_each_way(database: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.pgbouncer", "--requests", "20", "--concurrency", "2"],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    ways = [row.split("|")[1].strip() for row in rows]
    assert ways[:2] == ["direct (statement cache on)", "direct, TENANTRY_PGBOUNCER=true"]
    assert len(ways) == (3 if installed() else 2), result.stdout
    assert all(float(row.split("|")[2]) > 0 for row in rows)
