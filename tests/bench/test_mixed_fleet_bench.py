"""The mixed-fleet benchmark (`python -m bench.mixed_fleet`) still runs, tiny, in its own process:
moved here from tests/request_path/test_mixed_fleet.py, which tests mixed fleets themselves."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from service.paths import PROJECT_ROOT
from tenancy.testing import pgbouncer


async def test_mixed_fleets_over_http_answer_every_request(database: str, tmp_path: Path) -> None:
    """The mixed-fleet benchmark, tiny: real uvicorn, a pool of 2, a route that returns every
    column (so the enum and the widened column are in the results), and, where PgBouncer is
    installed, the enum fleet through it. Not one 5xx, not one dropped connection."""
    options = ["--tenants", "3", "--rounds", "1", "--duration", "0.5", "--warmup", "0.1"]
    out = ["--todos", "5", "--out", str(tmp_path / "mixed_fleet.json")]
    run = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bench.mixed_fleet", *options, *out],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = json.loads((tmp_path / "mixed_fleet.json").read_text())
    expected = {"a", "b", "c", "d", "a'"} if pgbouncer.installed() else {"a", "b", "c"}
    assert set(rows) == expected
    for name, row in rows.items():
        assert row["requests"] > 0, name
        assert (row["errors"], row["server_errors"], row["dropped"]) == (0, 0, 0), (name, row)
