"""bench/cli_startup.py still runs (a tiny fleet, one round), so it cannot rot between real runs.
It prints timings, never asserted here; django-tenants is not installed for the tests."""

import os
import subprocess
import sys

from service.paths import PROJECT_ROOT


def test_the_cli_benchmark_measures_every_command(database: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.cli_startup", "--tenants", "3", "--rounds", "1"],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "django-tenants not installed" in out
    for row in (
        "| `python -c pass` | ",
        "| `tenantry --help` | ",
        "| `tenantry tenants create SLUG --json` | ",
        "| `tenantry migrate`, nothing to do (3 tenants) | ",
    ):
        assert row in out, out
    create = next(line for line in out.splitlines() if "tenants create" in line)
    assert create.split(" | ")[3].endswith(" ms")  # its work was measured in process too
