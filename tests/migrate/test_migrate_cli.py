"""The real `tenantry migrate` command: JSON lines, status, --sql, the run lock, and kill -9."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from service.paths import PROJECT_ROOT
from tenancy.database import asyncpg_dsn
from tenancy.migrate.census import read_versions, registered_tenants
from tenancy.migrate.heads import Heads, cached_heads
from tenancy.migrate.lock import MIGRATE_LOCK, exclusive_run
from tenancy.migrate.tracks import load_tracks
from tenancy.naming import quote_schema, tenant_search_path
from tenancy.testing.fleets import (
    ADD_PRIORITY,
    PROJECT_HEAD,
    SLOW_ADD_PRIORITY,
    Fleet,
    add_revision,
)
from tests.cli.test_cli import TENANTRY
from tests.support.cli_imports import command_closure, offending
from tests.support.common import row_counts, schema_names
from tests.support.migrate import catalog_of, columns_of, revision_of, scratch_alembic
from tests.support.project import run_alembic


@pytest.fixture(scope="module")
def one_step(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scratch_alembic(tmp_path_factory.mktemp("cli"), [ADD_PRIORITY])


async def tenantry(fleet: Fleet, ini: Path, *args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(
        subprocess.run,
        [TENANTRY, *args],
        cwd=PROJECT_ROOT,
        env=fleet.env(ini),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_json_lines_give_every_tenant_and_status_names_who_is_behind(
    fleet: Fleet, one_step: Path
) -> None:
    await fleet.add_tenants("j", 4)
    broken = fleet.tenants[0]
    async with fleet.engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE {quote_schema(broken.schema)}.todos"))

    result = await tenantry(fleet, one_step, "migrate", "--json")
    assert result.returncode == 1, result.stderr
    *tenants, totals = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["tenant"] for r in tenants) == sorted(t.slug for t in fleet.tenants)
    failed = next(r for r in tenants if r["tenant"] == broken.slug)
    assert failed["status"] == "failed" and failed["error"].startswith("UndefinedTableError")
    assert {r["status"] for r in tenants if r is not failed} == {"migrated"}
    assert {r["to"] for r in tenants} == {"0002"}
    shared_head = load_tracks(one_step).shared_head
    assert totals["totals"] | {"seconds": 0} == {
        "migrated": 3,
        "current": 0,
        "failed": 1,
        "skipped": 0,
        "seconds": 0,
        "shared": {"from": shared_head, "to": shared_head},
    }

    status = await tenantry(fleet, one_step, "migrate", "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout) == {
        "shared": {"revision": shared_head, "head": shared_head},
        "tenant_head": "0002",
        "tenants": 4,
        "revisions": {"0002": 3, PROJECT_HEAD: 1},
        "behind": [broken.slug],
        "problems": {},
    }
    plain = (await tenantry(fleet, one_step, "migrate", "status")).stdout.splitlines()
    assert "  0002: 3  (head)" in plain
    assert f"behind (1): {broken.slug}" in plain


async def test_nothing_to_do_is_told_without_alembic_until_a_revision_is_added(
    fleet: Fleet, tmp_path: Path
) -> None:
    ini = scratch_alembic(tmp_path, [])
    await fleet.add_tenants("n", 2)
    assert cached_heads(ini) is None
    full = await tenantry(fleet, ini, "migrate", "--json")  # loads the tracks, caches the heads
    assert full.returncode == 0, full.stderr
    assert cached_heads(ini) == Heads(PROJECT_HEAD, load_tracks(ini).shared_head)

    quick = command_closure(["migrate", "--json"], env=fleet.env(ini))
    assert quick.code == 0, quick.output
    assert offending(quick.modules, ("alembic", "sqlalchemy")) == []

    def without_seconds(output: str) -> list[dict]:
        records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        records[-1]["totals"]["seconds"] = 0
        return records

    assert without_seconds(quick.output) == without_seconds(full.stdout)  # the same report
    assert without_seconds(full.stdout)[-1]["totals"]["current"] == 2

    add_revision(ini, ADD_PRIORITY)  # a deploy: other revisions, so no cached heads for them
    assert cached_heads(ini) is None
    after = await tenantry(fleet, ini, "migrate")
    assert after.returncode == 0, after.stderr
    assert "migrated 2, already current 0" in after.stdout
    for tenant in fleet.tenants:
        assert await revision_of(fleet.engine, tenant.schema) == "0002"
    assert cached_heads(ini) == Heads("0002", load_tracks(ini).shared_head)


async def test_sql_prints_each_tenants_transaction_and_changes_nothing(
    fleet: Fleet, one_step: Path
) -> None:
    await fleet.add_tenants("q", 2)

    async def snapshot() -> tuple:
        catalogs = [await catalog_of(fleet.engine, t.schema) for t in fleet.tenants]
        return await schema_names(fleet.engine), await row_counts(fleet.engine), catalogs

    before = await snapshot()
    result = await tenantry(fleet, one_step, "migrate", "--sql")
    assert result.returncode == 0, result.stderr
    for tenant in fleet.tenants:
        assert f"-- tenant {tenant.slug}: {PROJECT_HEAD} -> 0002" in result.stdout
        path = tenant_search_path(tenant.schema)
        assert f"SELECT set_config('search_path', '{path}', true);" in result.stdout
    assert result.stdout.count("ALTER TABLE todos ADD COLUMN priority INTEGER;") == 2
    assert await snapshot() == before
    for tenant in fleet.tenants:
        assert await revision_of(fleet.engine, tenant.schema) == PROJECT_HEAD


async def test_a_second_run_is_refused_at_once_and_so_is_plain_alembic(
    fleet: Fleet, one_step: Path
) -> None:
    await fleet.add_tenants("w", 1)
    async with exclusive_run(asyncpg_dsn(fleet.url)) as holder:
        holder_pid = await holder.fetchval("SELECT pg_backend_pid()")
        refused = await tenantry(fleet, one_step, "migrate")
        plain = await asyncio.to_thread(
            run_alembic, "upgrade", "head", env=fleet.env(one_step), config=one_step
        )
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("error: another migrate run is in progress")
    assert f"(PostgreSQL backend pid {holder_pid})" in refused.stderr  # docs/migrations.md
    assert len(refused.stderr.strip().splitlines()) == 1
    assert plain.returncode != 0 and "another migrate run is in progress" in plain.stderr
    assert await revision_of(fleet.engine, fleet.tenants[0].schema) == PROJECT_HEAD


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
async def test_kill_9_mid_run_leaves_no_tenant_half_done_and_a_rerun_finishes(
    fleet: Fleet, tmp_path: Path, signum: signal.Signals
) -> None:
    """kill -9, and SIGTERM (what docker stop and Kubernetes send) and SIGINT, which the command
    handles: one line and exit 143 or 130 (a SIGTERM killed it silently before: second
    independent pass, F6); every tenant either migrated or untouched, either way."""
    slow = scratch_alembic(tmp_path, [SLOW_ADD_PRIORITY])
    await fleet.add_tenants("k", 40)
    # two tenants' tables locked by the test until after the kill, and a lock timeout far beyond
    # the test: the run can never finish, so the kill lands mid-run however slow this machine
    # (without them the run's last 36 tenants took about half a second)
    blocker = await asyncpg.connect(asyncpg_dsn(fleet.url))
    holding = blocker.transaction()
    await holding.start()
    for tenant in fleet.tenants[-2:]:
        await blocker.execute(
            f"LOCK TABLE {quote_schema(tenant.schema)}.todos IN ACCESS EXCLUSIVE MODE"
        )
    run = await asyncio.create_subprocess_exec(
        *(TENANTRY, "migrate", "--concurrency", "2", "--lock-timeout", "3600"),
        cwd=PROJECT_ROOT,
        env=fleet.env(slow),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await until_migrated(fleet, at_least=4)
    finally:
        os.kill(run.pid, signum)
        _, stderr = await run.communicate()
        await holding.rollback()
        await blocker.close()
    await until_the_lock_is_free(fleet)
    if signum == signal.SIGKILL:
        assert run.returncode == -signal.SIGKILL
    else:
        assert run.returncode == 128 + signum
        message = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
        assert stderr.decode() == f"error: {message}\n"

    migrated = 0
    for tenant in fleet.tenants:
        revision = await revision_of(fleet.engine, tenant.schema)
        has_column = "priority" in await columns_of(fleet.engine, tenant.schema, "todos")
        assert (revision, has_column) in {(PROJECT_HEAD, False), ("0002", True)}, tenant.slug
        migrated += revision == "0002"
    assert 4 <= migrated < len(fleet.tenants), "the kill did not land mid-run"

    rerun = await tenantry(fleet, slow, "migrate")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"migrated {len(fleet.tenants) - migrated}, already current {migrated}," in rerun.stdout
    for tenant in fleet.tenants:
        assert "priority" in await columns_of(fleet.engine, tenant.schema, "todos")


async def until_migrated(fleet: Fleet, at_least: int) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(fleet.url))
    try:
        tenants = await registered_tenants(conn)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(120):  # a hang guard: a cold CLI on a busy machine
                while True:
                    versions = await read_versions([conn], tenants)
                    if sum(v.revision == "0002" for v in versions) >= at_least:
                        return
                    await asyncio.sleep(0.005)
    finally:
        await conn.close()
    raise AssertionError("the run never got going")


async def until_the_lock_is_free(fleet: Fleet) -> None:
    """A killed client's backend lives until it notices, holding the run lock until then."""
    conn = await asyncpg.connect(asyncpg_dsn(fleet.url))
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):  # a hang guard
                while True:
                    if await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *MIGRATE_LOCK):
                        await conn.fetchval("SELECT pg_advisory_unlock($1, $2)", *MIGRATE_LOCK)
                        return
                    await asyncio.sleep(0.01)
    finally:
        await conn.close()
    raise AssertionError("the killed run's lock was never released")
