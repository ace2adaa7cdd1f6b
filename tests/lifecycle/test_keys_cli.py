"""`tenantry keys`: several active keys for rotation, listing, revocation that bites at once."""

import json

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.keys import hash_key
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.registry import api_keys
from tenancy.testing.servers import client
from tests.support.common import seen_by_running_apps
from tests.support.lifecycle import NOTIFY_DEADLINE, cli, eventually, one_error_line


async def test_two_keys_work_at_once_and_a_revoked_one_stops_at_once(
    api: str, engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    created = await cli("keys", "create", tenant.slug, "--json")
    assert created.exit_code == 0, created.output
    second = json.loads(created.stdout)
    await seen_by_running_apps(  # the key was made behind the api's back: NOTIFY brings it
        str(engine.url), tenant.slug, lambda t: t is not None and second["key_id"] in t.key_hashes
    )
    async with (
        client(api, tenant.slug, tenant.api_key) as first_client,
        client(api, tenant.slug, second["api_key"]) as second_client,
    ):
        for http in (first_client, second_client):
            assert (await http.get("/todos")).status_code == 200

        revoked = await cli("keys", "revoke", tenant.key_id)
        assert revoked.stdout.strip() == f"revoked key {tenant.key_id} of tenant {tenant.slug}"

        async def first_refused() -> bool:
            return (await first_client.get("/todos")).status_code == 401

        await eventually(first_refused, within=NOTIFY_DEADLINE)
        assert (await second_client.get("/todos")).status_code == 200

    listed = json.loads((await cli("keys", "list", tenant.slug, "--json")).stdout)
    assert [(k["key_id"], k["active"]) for k in listed] == [
        (tenant.key_id, False),
        (second["key_id"], True),
    ]
    async with engine.connect() as conn:
        stored = await conn.scalar(
            select(api_keys.c.key_hash).where(api_keys.c.key_id == second["key_id"])
        )
    assert bytes(stored) == hash_key(second["api_key"])


async def test_plain_output_shows_the_key_once_and_lists_ids_only(tenant: CreatedTenant) -> None:
    created = await cli("keys", "create", tenant.slug)
    token = created.stdout.splitlines()[-1].removeprefix("API key (shown once): ")
    assert token.startswith("tnt_")
    listing = (await cli("keys", "list", tenant.slug)).stdout
    assert token not in listing and token.split("_")[1] in listing
    assert listing.count("active") == 2
    assert listing.splitlines()[0].split() == ["KEY_ID", "CREATED", "STATUS"]


async def test_key_commands_refuse_unknown_tenants_keys_and_archived_tenants(
    tenant: CreatedTenant,
) -> None:
    assert "unknown tenant" in one_error_line(await cli("keys", "create", "ghost-tenant"))
    assert "unknown tenant" in one_error_line(await cli("keys", "list", "ghost-tenant"))
    assert "no active key" in one_error_line(await cli("keys", "revoke", "000000000000"))
    assert (await cli("keys", "revoke", tenant.key_id)).exit_code == 0
    assert "no active key" in one_error_line(await cli("keys", "revoke", tenant.key_id))
    assert (await cli("tenants", "drop", tenant.slug, "--yes")).exit_code == 0
    assert "archived" in one_error_line(await cli("keys", "create", tenant.slug))
