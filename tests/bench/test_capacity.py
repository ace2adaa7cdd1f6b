"""`python -m bench.capacity`, run as a process: it prints an estimate, and says no to bad input
with one line. The model itself is unit-tested beside it (bench/test_capacity.py)."""

import json
import subprocess
import sys

import pytest

from service.paths import PROJECT_ROOT


def run_capacity(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.capacity", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_command_prints_an_estimate() -> None:
    result = run_capacity("--tenants", "250000", "--rps", "3000", "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["nodes"] >= 1 and printed["catalog_rows"] > 250_000


@pytest.mark.parametrize(
    "args",
    [("--tenants", "0"), ("--tenants", "10", "--measured", "/nonexistent/measured.json")],
)
def test_bad_input_is_one_line_on_stderr(args: tuple[str, ...]) -> None:
    result = run_capacity(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("capacity: ") and result.stderr.count("\n") == 1
