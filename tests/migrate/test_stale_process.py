"""A process never stamps a revision other than the one whose tables it built (issue 13, item 4).

An API process loads its models at start-up. A deploy then puts a new tenant revision on disk.
Before the fix the process read the head lazily, on its first onboarding, and stamped the new
head on tables built from its old models: a tenant broken for good that `migrate` called current.
Now a process loads its revisions together with its models, refuses to build tenants once the
disk has moved past them (503 `process-behind`, nothing created), and `tenantry migrate status
--verify` finds any tenant whose catalog does not match its stamp.
"""

import asyncio
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from service.app import create_app
from service.models import TenantBase
from tenancy.lifecycle.archive import archive_tenant, purge_tenant
from tenancy.lifecycle.blueprint import TenantBlueprint
from tenancy.lifecycle.errors import ProcessBehind
from tenancy.lifecycle.onboarding import create_tenant
from tenancy.migrate.tracks import SHARED_SECTION, Tracks, load_tracks, run_track
from tenancy.naming import quote_archive_schema, quote_schema
from tenancy.registry import tenants
from tenancy.search_path import ENTER_SCHEMA
from tenancy.testing.fleets import ADD_PRIORITY, PROJECT_HEAD, Fleet, add_revision
from tenancy.testing.replay_builders import replayed
from tenancy.testing.servers import client
from tests.support.common import run_tenantry, running_server
from tests.support.lifecycle import footprint
from tests.support.migrate import columns_of, revision_of, scratch_alembic
from tests.support.project import ADMIN_TOKEN, make_settings

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PROCESS_BEHIND = "https://tenantry.dev/problems/process-behind"


def lazy_tracks(ini: Path) -> Tracks:
    """Tracks as they were before the fix: Alembic reads the revisions on first use."""
    return Tracks(
        ScriptDirectory.from_config(Config(ini)),
        ScriptDirectory.from_config(Config(ini, ini_section=SHARED_SECTION)),
    )


def blueprint(tracks: Tracks) -> TenantBlueprint:
    """What service.onboarding builds: the loaded models' DDL stamped at the tracks' head."""
    return TenantBlueprint.from_models(tracks, TenantBase.metadata)


async def test_a_process_started_before_a_deploy_refuses_to_onboard(
    fleet: Fleet, tmp_path: Path
) -> None:
    ini = scratch_alembic(tmp_path, [])
    async with (
        running_server(create_app(make_settings(fleet.url), ini)) as base_url,
        client(base_url) as http,
    ):
        made = await http.post("/admin/tenants", json={"slug": "early"}, headers=ADMIN)
        assert made.status_code == 201, made.text
        await asyncio.to_thread(add_revision, ini, ADD_PRIORITY)  # the deploy
        before = await footprint(fleet.engine)

        refused = await http.post("/admin/tenants", json={"slug": "late"}, headers=ADMIN)

        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == PROCESS_BEHIND
        assert "0002" in refused.json()["detail"] and PROJECT_HEAD in refused.json()["detail"]
        assert await footprint(fleet.engine) == before  # no row, schema or key


async def test_what_a_process_stamps_is_what_it_built(fleet: Fleet, tmp_path: Path) -> None:
    """Loaded before the deploy: refused. The old lazy head (negative control) stamps 0002 on
    0001 tables, and `migrate status --verify` names exactly that tenant."""
    ini = scratch_alembic(tmp_path, [])
    pinned, lazy = load_tracks(ini), lazy_tracks(ini)
    await asyncio.to_thread(add_revision, ini, ADD_PRIORITY)

    before = await footprint(fleet.engine)
    try:
        await create_tenant(fleet.engine, blueprint(pinned), "pinned")
        raise AssertionError("a process behind the disk onboarded a tenant")
    except ProcessBehind as exc:
        assert "0002" in str(exc)
    assert await footprint(fleet.engine) == before

    # Built by replaying the revisions on disk (what a restarted process stamps is what it
    # runs), with rows, so verify must ignore sequence positions.
    good = await create_tenant(fleet.engine, replayed(load_tracks(ini)), "replayed")
    async with fleet.engine.begin() as conn:
        await conn.execute(
            text(f"INSERT INTO {quote_schema(good.schema)}.todos (content) VALUES ('x')")
        )
    verified = await asyncio.to_thread(
        run_tenantry, "migrate", "status", "--verify", env=fleet.env(ini)
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "1 match their revision, 0 drifted" in verified.stdout

    stale = await create_tenant(fleet.engine, blueprint(lazy), "stale")  # the negative control
    assert await revision_of(fleet.engine, stale.schema) == "0002"
    assert "priority" not in await columns_of(fleet.engine, stale.schema, "todos")

    drift = await asyncio.to_thread(
        run_tenantry, "migrate", "status", "--verify", env=fleet.env(ini)
    )
    assert drift.returncode == 1, drift.stdout + drift.stderr
    lines = [line for line in drift.stdout.splitlines() if line.startswith("drifted ")]
    assert len(lines) == 1 and lines[0].startswith("drifted stale: stamped 0002"), drift.stdout
    assert "priority" in lines[0]
    assert "Traceback" not in drift.stderr


async def test_restore_on_a_process_older_than_the_tenant_says_it_is_behind(
    fleet: Fleet, tmp_path: Path
) -> None:
    ini = scratch_alembic(tmp_path, [])
    tenant = await create_tenant(fleet.engine, replayed(load_tracks(ini)), "archived-new")
    await archive_tenant(fleet.engine, tenant.slug)
    async with (
        running_server(create_app(make_settings(fleet.url), ini)) as base_url,
        client(base_url) as http,
    ):
        await http.get("/healthz")
        await asyncio.to_thread(add_revision, ini, ADD_PRIORITY)
        async with fleet.engine.begin() as conn:  # the archive as newer code left it
            archived = await conn.scalar(
                select(tenants.c.archived_schema).where(tenants.c.slug == tenant.slug)
            )
            await conn.execute(ENTER_SCHEMA, {"schema": archived})
            await conn.run_sync(run_track, load_tracks(ini).tenant, archived, "0002")

        refused = await http.post(f"/admin/tenants/{tenant.slug}/restore", headers=ADMIN)

        assert refused.status_code == 503, refused.text
        assert refused.json()["type"] == PROCESS_BEHIND
        row = await http.get(f"/admin/tenants/{tenant.slug}", headers=ADMIN)
        assert row.json()["status"] == "archived"
    await purge_tenant(fleet.engine, tenant.slug)  # the fleet is emptied of live tenants only


async def test_restore_of_a_revision_this_code_does_not_know_says_the_process_is_behind(
    fleet: Fleet, tmp_path: Path
) -> None:
    ini = scratch_alembic(tmp_path, [])
    tenant = await create_tenant(fleet.engine, replayed(load_tracks(ini)), "unknown-rev")
    change = await archive_tenant(fleet.engine, tenant.slug)
    async with fleet.engine.begin() as conn:
        await conn.execute(
            text(
                f"UPDATE {quote_archive_schema(change.archived_schema)}.alembic_version"
                " SET version_num = 'feedface'"
            )
        )
    async with (
        running_server(create_app(make_settings(fleet.url), ini)) as base_url,
        client(base_url) as http,
    ):
        refused = await http.post(f"/admin/tenants/{tenant.slug}/restore", headers=ADMIN)
    # The process of an older image than the one that migrated: its disk knows nothing newer.
    assert refused.status_code == 503, refused.text
    assert refused.json()["type"] == PROCESS_BEHIND
    assert "feedface" in refused.json()["detail"]
    await purge_tenant(fleet.engine, tenant.slug)
