"""The project under test, as the fixtures set it up: its admin token, its runtime role, its
settings, its `alembic` command, and the suite's Citus mode (one-server tests skipped there)."""

import secrets
import subprocess
from pathlib import Path

import pytest

from service.paths import ALEMBIC_INI, PROJECT_ROOT
from tenancy.settings import TenancySettings
from tenancy.testing import throwaway
from tenancy.testing.citus import CITUS_WORKERS_ENV, on_citus

ADMIN_TOKEN = "test-admin-token-" + secrets.token_hex(8)
RUNTIME_ROLE = "tenantry_test_api"


def run_alembic(
    *args: str, env: dict[str, str] | None = None, config: Path = ALEMBIC_INI
) -> subprocess.CompletedProcess:
    """The real `alembic` command line, in the project folder."""
    return throwaway.run_alembic(config, *args, env=env, cwd=PROJECT_ROOT)


def make_settings(database: str, **overrides: object) -> TenancySettings:
    values = {"database_url": database, "admin_token": ADMIN_TOKEN, **overrides}
    return TenancySettings(**values)


def skip_single_server_tests(items: list[pytest.Item]) -> None:
    """On Citus, tests marked `single_server(reason)` are skipped with their reason; the reason
    is required, so that every such test says why it holds on one server only."""
    for item in items:
        marker = item.get_closest_marker("single_server")
        if marker is None:
            continue
        if not marker.args or not str(marker.args[0]).strip():
            raise pytest.UsageError(f"{item.nodeid}: single_server needs a reason")
        if on_citus():
            item.add_marker(pytest.mark.skip(reason=f"one server only: {marker.args[0]}"))
    if not on_citus():
        skip = pytest.mark.skip(reason=f"Citus only: set {CITUS_WORKERS_ENV} (make test-citus)")
        for item in items:
            if item.get_closest_marker("citus") is not None:
                item.add_marker(skip)
