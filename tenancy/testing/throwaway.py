"""Throwaway databases: a fresh database with a random name on the server under test (on every
node of a Citus cluster, citus.py), migrated by the real `alembic` command, and dropped at the end;
a user's own data is never touched."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from sqlalchemy import make_url

from tenancy.database import ensure_database
from tenancy.testing.citus import on_citus, register_nodes, worker_urls
from tenancy.testing.drop import drop_database


def throwaway_url(server_url: str, label: str = "test") -> str:
    """A database name of our own on `server_url`'s server (nothing is created yet)."""
    name = f"tenantry_{label}_{secrets.token_hex(4)}"
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def create_test_database(url: str) -> None:
    """A new database at `url`; on Citus on every node, with the extension and the nodes
    registered, so that every schema created there is distributed."""
    await ensure_database(url)
    if not on_citus():
        return
    for worker in worker_urls(url):
        await ensure_database(worker)
    await register_nodes(url)


async def drop_test_database(url: str) -> None:
    """The coordinator's database first (it holds connections to the workers' copies)."""
    await drop_database(url)
    for worker in worker_urls(url):
        await drop_database(worker)


def run_alembic(
    config: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """The real `alembic` command line with this alembic.ini, run in `cwd` (the ini's folder by
    default; the project's root when a scratch copy's env.py imports the project)."""
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(config), *args],
        cwd=cwd or config.parent,
        env=env or os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
