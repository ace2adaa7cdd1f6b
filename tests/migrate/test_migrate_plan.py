"""Planning a run: targets, which revisions need a live connection, and the one-pass census
that `migrate status` reports from."""

import pytest
from sqlalchemy import text

from tenancy.database import asyncpg_dsn
from tenancy.lifecycle.errors import UnknownTenant
from tenancy.migrate.census import read_versions, registered_tenants
from tenancy.migrate.connections import open_connections
from tenancy.migrate.liveness import needs_live_connection
from tenancy.migrate.plan import make_plan
from tenancy.migrate.status import fleet_status
from tenancy.migrate.targets import Step, UnknownRevision, check_target, step_for
from tenancy.migrate.tracks import Tracks, load_tracks
from tenancy.naming import quote_schema
from tenancy.testing.fleets import ADD_PRIORITY, LIVE_BACKFILL, Fleet
from tests.support.migrate import scratch_alembic


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Tracks:
    """Tenant track 0001 -> 0002 (add a column) -> 0003 (reads the database)."""
    return load_tracks(
        scratch_alembic(tmp_path_factory.mktemp("plan"), [ADD_PRIORITY, LIVE_BACKFILL])
    )


def test_targets_resolve_ids_head_base_and_relative_steps(scratch: Tracks) -> None:
    script = scratch.tenant
    assert step_for(script, "head", "0001") == Step("0001", "0003", downgrade=False)
    assert step_for(script, "head", None) == Step(None, "0003", downgrade=False)
    assert step_for(script, "0002", "0003") == Step("0003", "0002", downgrade=True)
    assert step_for(script, "base", "0002") == Step("0002", None, downgrade=True)
    assert step_for(script, "-1", "0003") == Step("0003", "0002", downgrade=True)
    assert step_for(script, "+2", "0001") == Step("0001", "0003", downgrade=False)
    assert step_for(script, "+1", None) == Step(None, "0001", downgrade=False)
    assert step_for(script, "head", "0003") == Step("0003", "0003", downgrade=False)
    for target, current in [("-1", None), ("+1", "0003"), ("nope", "0001"), ("head", "ffff")]:
        with pytest.raises(UnknownRevision):
            step_for(script, target, current)
    with pytest.raises(UnknownRevision):
        check_target(script, "nope")


def test_only_revisions_that_read_the_database_need_a_live_connection(scratch: Tracks) -> None:
    script = scratch.tenant
    assert not needs_live_connection(script, Step("0001", "0002", downgrade=False))
    assert not needs_live_connection(script, Step("0002", None, downgrade=True))
    assert needs_live_connection(script, Step("0001", "0003", downgrade=False))
    assert needs_live_connection(script, Step("0003", "0002", downgrade=True))


async def test_census_and_status_see_every_tenant_in_one_pass(
    fleet: Fleet, scratch: Tracks
) -> None:
    await fleet.add_tenants("p", 6)
    base_kept_table, no_table, gone, *at_0001 = fleet.tenants
    async with fleet.engine.begin() as conn:
        for tenant, statement in [
            (base_kept_table, "DELETE FROM {}.alembic_version"),
            (no_table, "DROP TABLE {}.alembic_version"),
            (gone, "DROP SCHEMA {} CASCADE"),
        ]:
            await conn.execute(text(statement.format(quote_schema(tenant.schema))))

    async with open_connections(asyncpg_dsn(fleet.url), 2) as connections:
        tenants = await registered_tenants(connections[0])
        versions = {v.tenant.slug: v for v in await read_versions(connections, tenants)}
        with pytest.raises(UnknownTenant, match="ghost"):
            await registered_tenants(connections[0], ["ghost", gone.slug])
    assert [versions[t.slug].revision for t in at_0001] == ["0001"] * len(at_0001)
    assert versions[base_kept_table.slug].revision is None
    assert versions[no_table.slug].revision is None
    assert "missing" in (versions[gone.slug].problem or "")

    plan = make_plan(scratch.tenant, "0002", versions.values())
    assert {(g.step.from_rev, g.step.to_rev, g.live, len(g.tenants)) for g in plan.groups} == {
        ("0001", "0002", False, len(at_0001)),
        (None, "0002", False, 2),
    }
    assert [bad.tenant.slug for bad in plan.unplannable] == [gone.slug]

    status = await fleet_status(fleet.url, scratch)
    assert status.tenants == len(fleet.tenants)
    assert status.revisions == {"0001": len(at_0001), "base": 2}
    assert sorted(status.behind) == sorted(t.slug for t in [base_kept_table, no_table, *at_0001])
    assert list(status.problems) == [gone.slug]
    assert (status.shared_revision, status.tenant_head) == (scratch.shared_head, "0003")
