"""The `tenantry` command line: JSON for machines, one stderr line and exit 1 for errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from service.paths import PROJECT_ROOT
from tenancy.keys import key_matches
from tenancy.naming import tenant_schema
from tenancy.registry import resolve_tenant
from tests.support.common import row_counts, schema_names

TENANTRY = str(Path(sys.executable).parent / "tenantry")


def tenantry(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TENANTRY, *args],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_create_prints_one_json_object_with_a_working_key(
    database: str, engine: AsyncEngine, new_slug: str
) -> None:
    result = tenantry("tenants", "create", new_slug, "--display-name", "Acme Co", "--json")
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["slug"] == new_slug
    assert created["schema_name"] == tenant_schema(new_slug) and "schema" not in created
    async with engine.connect() as conn:
        resolved = await resolve_tenant(conn, new_slug)
    assert resolved is not None
    assert key_matches(created["api_key"], resolved.key_hashes)

    listed = json.loads(tenantry("tenants", "list", "--json").stdout)
    assert {"slug": new_slug, "display_name": "Acme Co", "status": "active"}.items() <= next(
        row for row in listed if row["slug"] == new_slug
    ).items()


async def test_errors_are_one_line_on_stderr_and_exit_1(
    database: str, engine: AsyncEngine, new_slug: str
) -> None:
    assert tenantry("tenants", "create", new_slug).returncode == 0
    schemas, rows = await schema_names(engine), await row_counts(engine)
    for bad in ["Bad_Slug", "public", "x", new_slug]:
        result = tenantry("tenants", "create", bad)
        assert result.returncode == 1, bad
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("error: ")
    assert await schema_names(engine) == schemas
    assert await row_counts(engine) == rows


def test_usage_errors_exit_2(database: str) -> None:
    assert tenantry("tenants", "create").returncode == 2
    assert tenantry("no-such-command").returncode == 2


def test_migrate_brings_everything_to_head(database: str) -> None:
    result = tenantry("migrate")
    assert result.returncode == 0, result.stderr
    rerun = tenantry("migrate")  # nothing left to do: no "(0 tenants/s)"
    assert rerun.returncode == 0, rerun.stderr
    assert "migrated 0, already current" in rerun.stdout
    assert "tenants/s" not in rerun.stdout


async def test_listings_are_ordered_tenants_by_slug_and_keys_oldest_first(
    database: str, new_slug: str
) -> None:
    """command-line.md: tenants (and limits) by slug, a tenant's keys oldest first; created here
    out of order, so an unordered listing would show it."""
    for prefix in ("zz", "aa", "mm"):
        assert tenantry("tenants", "create", f"{prefix}-{new_slug}").returncode == 0
    ours = [f"{prefix}-{new_slug}" for prefix in ("aa", "mm", "zz")]
    slugs = [row["slug"] for row in json.loads(tenantry("tenants", "list", "--json").stdout)]
    assert [slug for slug in slugs if slug in ours] == ours  # (others: the database's collation)
    owner = f"mm-{new_slug}"
    made = [json.loads(tenantry("keys", "create", owner, "--json").stdout) for _ in range(3)]
    listed = json.loads(tenantry("keys", "list", owner, "--json").stdout)
    made_ids = [key["key_id"] for key in made]
    assert [key["key_id"] for key in listed][-3:] == made_ids, (listed, made)
