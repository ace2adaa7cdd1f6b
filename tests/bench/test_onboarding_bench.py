"""A tiny run of bench/onboarding.py, so that the benchmark cannot rot unnoticed.

It prints timings (never asserted here) and exits non-zero if any method built a schema that
differs from running every revision, in either history.
"""

import asyncio
import os
import subprocess
import sys

from service.paths import PROJECT_ROOT
from tests.support.lifecycle import footprint


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.onboarding", *args],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )


async def test_bench_runs_both_histories_and_checks_identity(engine, database: str) -> None:
    before = await footprint(engine)
    result = await asyncio.to_thread(
        run_bench, "--tenants", "2", "--extra-revisions", "3", "--in-place"
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("identical catalogs") == 2
    for history in ("| 1 revision |", "| 4 revisions |"):
        assert out.count(history) == 4, out
    assert "create_tenant p50, 4 revisions / 1 revision:" in out
    assert await footprint(engine) == before  # --in-place cleans up after itself
