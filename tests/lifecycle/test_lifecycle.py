"""Suspend, resume, drop (archive), restore and purge, seen from the registry, the catalog and
two separately running API servers."""

import asyncio
import json

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.migrate.tracks import Tracks, run_track
from tenancy.naming import archive_schema, quote_schema
from tenancy.registry import api_keys, tenants
from tenancy.search_path import ENTER_SCHEMA
from tenancy.testing.servers import client
from tests.support.common import running_server, schema_names
from tests.support.lifecycle import NOTIFY_DEADLINE, cli, eventually, footprint, one_error_line
from tests.support.project import ADMIN_TOKEN, make_settings, run_alembic

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def status_on(http: httpx.AsyncClient):
    async def status() -> int:
        return (await http.get("/todos")).status_code

    return status


async def all_answer(servers: list[httpx.AsyncClient], code: int) -> bool:
    return all([await status_on(http)() == code for http in servers])


async def test_every_api_server_follows_suspend_resume_drop_restore_through_notify(
    database: str, tenant: CreatedTenant
) -> None:
    """The registry cache lives an hour here: only NOTIFY can make the servers notice."""
    settings = make_settings(database, registry_cache_ttl=3600)
    async with (
        running_server(create_app(settings)) as one,
        running_server(create_app(settings)) as two,
        client(one, tenant.slug, tenant.api_key) as first,
        client(two, tenant.slug, tenant.api_key) as second,
        client(one) as admin,
    ):
        servers = [first, second]
        assert await all_answer(servers, 200)  # both have the tenant cached now

        response = await admin.post(f"/admin/tenants/{tenant.slug}/suspend", headers=ADMIN)
        assert response.status_code == 200 and response.json()["status"] == "suspended"
        await eventually(lambda: all_answer(servers, 403), within=NOTIFY_DEADLINE)

        assert (await cli("tenants", "resume", tenant.slug)).exit_code == 0
        await eventually(lambda: all_answer(servers, 200), within=NOTIFY_DEADLINE)

        assert (await cli("tenants", "drop", tenant.slug, "--yes")).exit_code == 0
        await eventually(lambda: all_answer(servers, 401), within=NOTIFY_DEADLINE)

        response = await admin.post(f"/admin/tenants/{tenant.slug}/restore", headers=ADMIN)
        assert response.status_code == 200 and response.json()["status"] == "active"
        await eventually(lambda: all_answer(servers, 200), within=NOTIFY_DEADLINE)


async def test_drop_archives_and_restore_brings_back_data_and_keys(
    engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(f"INSERT INTO {quote_schema(tenant.schema)}.todos (content) VALUES ('kept')")
        )
    dropped = await cli("tenants", "drop", tenant.slug, "--yes")
    assert dropped.exit_code == 0, dropped.output
    async with engine.connect() as conn:
        row = (await conn.execute(select(tenants).where(tenants.c.slug == tenant.slug))).one()
        revoked = await conn.scalar(
            select(api_keys.c.revoked_at).where(api_keys.c.key_id == tenant.key_id)
        )
    assert (row.status, row.status_before_archive) == ("archived", "active")
    assert row.archived_schema == archive_schema(row.id, tenant.slug)
    assert revoked == row.archived_at
    schemas = await schema_names(engine)
    assert tenant.schema not in schemas and row.archived_schema in schemas

    assert (await cli("tenants", "restore", tenant.slug)).exit_code == 0
    async with engine.connect() as conn:
        kept = await conn.scalar(text(f"SELECT content FROM {quote_schema(tenant.schema)}.todos"))
        revoked = await conn.scalar(
            select(api_keys.c.revoked_at).where(api_keys.c.key_id == tenant.key_id)
        )
    assert (kept, revoked) == ("kept", None)
    assert row.archived_schema not in await schema_names(engine)


async def test_restore_keeps_earlier_revocations_and_the_suspension(
    engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    second = json.loads((await cli("keys", "create", tenant.slug, "--json")).stdout)
    assert (await cli("keys", "revoke", second["key_id"])).exit_code == 0
    assert (await cli("tenants", "suspend", tenant.slug)).exit_code == 0
    assert (await cli("tenants", "drop", tenant.slug, "--yes")).exit_code == 0
    assert (await cli("tenants", "restore", tenant.slug)).exit_code == 0
    keys = json.loads((await cli("keys", "list", tenant.slug, "--json")).stdout)
    active = {key["key_id"]: key["active"] for key in keys}
    assert active == {tenant.key_id: True, second["key_id"]: False}
    listed = json.loads((await cli("tenants", "list", "--json")).stdout)
    assert next(t for t in listed if t["slug"] == tenant.slug)["status"] == "suspended"


async def test_restore_brings_a_schema_that_fell_behind_back_to_head(
    engine: AsyncEngine, tracks: Tracks, tenant: CreatedTenant
) -> None:
    assert (await cli("tenants", "drop", tenant.slug, "--yes")).exit_code == 0
    async with engine.begin() as conn:
        archived = await conn.scalar(
            select(tenants.c.archived_schema).where(tenants.c.slug == tenant.slug)
        )
        await conn.execute(ENTER_SCHEMA, {"schema": archived})
        await conn.run_sync(run_track, tracks.tenant, archived, "base", downgrade=True)
    assert (await cli("tenants", "restore", tenant.slug)).exit_code == 0
    async with engine.connect() as conn:
        schema = quote_schema(tenant.schema)
        revision = await conn.scalar(text(f"SELECT version_num FROM {schema}.alembic_version"))
        assert await conn.scalar(text(f"SELECT count(*) FROM {schema}.todos")) == 0
    assert revision == tracks.tenant_head


async def test_purge_drops_an_archive_for_good_and_frees_the_slug(
    engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    one_error_line(await cli("tenants", "purge", tenant.slug, "--yes"))  # not archived yet
    assert (await cli("tenants", "drop", tenant.slug, "--yes")).exit_code == 0
    one_error_line(await cli("tenants", "create", tenant.slug))  # the slug is still taken
    before = await footprint(engine)
    purged = await cli("tenants", "purge", tenant.slug, "--yes")
    assert purged.exit_code == 0, purged.output
    after = await footprint(engine)
    assert before.slugs - after.slugs == {tenant.slug}
    assert len(before.schemas - after.schemas) == 1 and after.keys == before.keys - 1
    assert (await cli("tenants", "create", tenant.slug)).exit_code == 0


@pytest.mark.parametrize("command", ["drop", "purge"])
async def test_nothing_is_dropped_without_yes(
    engine: AsyncEngine, tenant: CreatedTenant, command: str
) -> None:
    if command == "purge":
        assert (await cli("tenants", "drop", tenant.slug, "--yes")).exit_code == 0
    before = await footprint(engine)
    assert "without --yes" in one_error_line(await cli("tenants", command, tenant.slug))
    assert await footprint(engine) == before


@pytest.mark.parametrize(
    ("commands", "message"),
    [
        ([("suspend", "ghost-tenant")], "unknown tenant 'ghost-tenant'"),
        ([("drop", "{slug}", "--yes"), ("drop", "{slug}", "--yes")], "already archived"),
        ([("drop", "{slug}", "--yes"), ("suspend", "{slug}")], "archived; restore it first"),
        ([("restore", "{slug}")], "is not archived (active): nothing to restore"),
        ([("purge", "{slug}", "--yes")], "only an archived tenant can be purged"),
    ],
)
async def test_lifecycle_refusals_are_one_line(
    tenant: CreatedTenant, commands: list[tuple[str, ...]], message: str
) -> None:
    *setup, refused = [[arg.format(slug=tenant.slug) for arg in c] for c in commands]
    for command in setup:
        assert (await cli("tenants", *command)).exit_code == 0
    assert message in one_error_line(await cli("tenants", *refused))


async def test_migrate_leaves_archived_tenants_alone(
    engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    assert (await cli("tenants", "drop", tenant.slug, "--yes")).exit_code == 0
    result = await asyncio.to_thread(run_alembic, "upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert tenant.schema not in await schema_names(engine)


async def test_list_shows_status_revision_created_and_size(
    tracks: Tracks, tenant: CreatedTenant, other_tenant: CreatedTenant
) -> None:
    assert (await cli("tenants", "drop", other_tenant.slug, "--yes")).exit_code == 0
    listed = {t["slug"]: t for t in json.loads((await cli("tenants", "list", "--json")).stdout)}
    mine, archived = listed[tenant.slug], listed[other_tenant.slug]
    assert (mine["status"], mine["revision"], mine["schema_name"]) == (
        "active",
        tracks.tenant_head,
        tenant.schema,
    )
    assert mine["size_bytes"] > 8192 and mine["created_at"]
    assert (archived["status"], archived["revision"]) == ("archived", tracks.tenant_head)
    assert archived["schema_name"].startswith("archived_")
    table = (await cli("tenants", "list")).stdout.splitlines()
    assert table[0].split() == ["SLUG", "STATUS", "REVISION", "CREATED", "SIZE", "NAME"]
    row = next(line.split() for line in table if line.startswith(tenant.slug + " "))
    assert row[:3] == [tenant.slug, "active", tracks.tenant_head] and row[6] == "kB"
