"""Tenantry on a real Citus cluster (make test-citus, or .ci/run): what docs/scale-out.md claims.

Skipped on one server (the `citus` marker). Every check looks at where Citus really put things:
`citus_schemas` and `citus_shards` on the coordinator, and the shard tables on the workers
themselves, through connections straight to the worker holding a tenant.
"""

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import Index, MetaData, UniqueConstraint, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.models import TenantBase
from tenancy.citus import LOCK_WAITS, WHO_BLOCKS_WHOM
from tenancy.database import asyncpg_dsn
from tenancy.lifecycle.blueprint import TenantBlueprint
from tenancy.lifecycle.onboarding import CreatedTenant, create_tenant
from tenancy.migrate.tracks import Tracks
from tenancy.testing.citus import citus_workers, on_node
from tenancy.testing.fleets import PROJECT_HEAD, Fleet, Revision
from tenancy.testing.servers import client
from tests.support.common import request_waiting_on_a_row_lock, run_tenantry
from tests.support.migrate import catalog_of, columns_of, revision_of, scratch_alembic
from tests.support.project import RUNTIME_ROLE

pytestmark = pytest.mark.citus


@dataclass(frozen=True)
class Placement:
    """Where one tenant table's single shard lives."""

    shard: str
    """The shard table's qualified name on its worker, e.g. tenant_acme.todos_102008."""
    host: str
    port: int


async def placement(engine: AsyncEngine, schema: str, table: str) -> Placement:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT shard_name, nodename, nodeport FROM citus_shards"
                    " WHERE table_name = CAST(:table AS regclass)"
                ),
                {"table": f"{schema}.{table}"},
            )
        ).one()
    return Placement(row.shard_name, row.nodename, row.nodeport)


@asynccontextmanager
async def on_worker(database: str, host: str, port: int) -> AsyncIterator[asyncpg.Connection]:
    """A connection straight to a worker's copy of the test database (as the owner)."""
    conn = await asyncpg.connect(asyncpg_dsn(on_node(database, host, port)))
    try:
        yield conn
    finally:
        await conn.close()


def other_worker(host: str, port: int) -> tuple[str, int]:
    (other,) = [worker for worker in citus_workers() if worker != (host, port)]
    return other


async def test_every_tenant_schema_is_distributed_and_the_tenants_spread_over_the_workers(
    engine: AsyncEngine, blueprint: TenantBlueprint
) -> None:
    created = [
        await create_tenant(engine, blueprint, f"s-{secrets.token_hex(4)}") for _ in range(4)
    ]
    schemas = [tenant.schema for tenant in created]
    async with engine.connect() as conn:
        colocations = dict(
            (
                await conn.execute(
                    text(
                        "SELECT schema_name::text, colocation_id FROM citus_schemas"
                        " WHERE schema_name::text = ANY(CAST(:schemas AS text[]))"
                    ),
                    {"schemas": schemas},
                )
            ).all()
        )
        nodes = (
            await conn.execute(
                text(
                    "SELECT DISTINCT nodename, nodeport FROM citus_shards"
                    " WHERE citus_table_type = 'schema'"
                    " AND split_part(table_name::text, '.', 1) = ANY(CAST(:schemas AS text[]))"
                ),
                {"schemas": schemas},
            )
        ).all()
    assert set(colocations) == set(schemas)
    assert len(set(colocations.values())) == len(schemas), "one colocation group per tenant"
    assert {(row.nodename, row.nodeport) for row in nodes} == set(citus_workers())
    for tenant in created:
        todos = await placement(engine, tenant.schema, "todos")
        users = await placement(engine, tenant.schema, "users")
        assert (todos.host, todos.port) == (users.host, users.port), "a tenant sits on one worker"


async def test_a_tenants_rows_are_on_the_worker_that_holds_it_and_nowhere_else(
    engine: AsyncEngine, database: str, api: str, tenant: CreatedTenant
) -> None:
    content = "on-the-worker-" + secrets.token_hex(4)
    async with client(api, tenant.slug, tenant.api_key) as http:
        assert (await http.post("/todos", json={"content": content})).status_code == 201
    where = await placement(engine, tenant.schema, "todos")
    async with on_worker(database, where.host, where.port) as worker:
        rows = await worker.fetch(f"SELECT content FROM {where.shard}")
    assert [row["content"] for row in rows] == [content]
    async with on_worker(database, *other_worker(where.host, where.port)) as other:
        assert await other.fetchval("SELECT to_regclass($1)", where.shard) is None
    async with engine.connect() as conn:  # the coordinator keeps an empty shell table
        local = await conn.scalar(
            text("SELECT pg_relation_size(CAST(:table AS regclass))"),
            {"table": f"{tenant.schema}.todos"},
        )
    assert local == 0


async def test_the_runtime_role_has_its_grants_on_the_shards_and_serves_requests(
    engine: AsyncEngine, database: str, runtime_api: str, new_slug: str, blueprint: TenantBlueprint
) -> None:
    tenant = await create_tenant(engine, blueprint, new_slug)  # after roles setup: grants run
    async with client(runtime_api, tenant.slug, tenant.api_key) as http:
        created = await http.post("/todos", json={"content": "as the runtime role"})
        assert created.status_code == 201, created.text
        assert (await http.get("/todos")).json()["items"][0]["content"] == "as the runtime role"
    where = await placement(engine, tenant.schema, "todos")
    registry = await placement(engine, "tenantry", "tenants")
    async with on_worker(database, where.host, where.port) as worker:
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            assert await worker.fetchval(
                "SELECT has_table_privilege($1, $2, $3)", RUNTIME_ROLE, where.shard, privilege
            ), privilege
    # The runtime role exists on the workers too and, where pg_hba lets it in (here: trust on
    # 127.0.0.1), reaches its rows there directly, past the coordinator: pg_hba is the fence.
    runtime_on_worker = make_url(on_node(database, where.host, where.port)).set(
        username=RUNTIME_ROLE
    )
    direct = await asyncpg.connect(
        asyncpg_dsn(runtime_on_worker.render_as_string(hide_password=False))
    )
    try:
        assert await direct.fetchval(f"SELECT count(*) FROM {where.shard}") == 1
    finally:
        await direct.close()
    async with on_worker(database, registry.host, registry.port) as worker:
        assert await worker.fetchval(
            "SELECT has_column_privilege($1, $2, 'slug', 'SELECT')", RUNTIME_ROLE, registry.shard
        )
        assert not await worker.fetchval(
            "SELECT has_table_privilege($1, $2, 'UPDATE')", RUNTIME_ROLE, registry.shard
        )


KINDS_OF_REVISION = [
    Revision(
        "0002",
        PROJECT_HEAD,
        """op.add_column("todos", sa.Column("priority", sa.Integer(), nullable=True))
    op.add_column("users", sa.Column("note", sa.Text(), nullable=True))""",
        """op.drop_column("users", "note")
    op.drop_column("todos", "priority")""",
    ),
    Revision(
        "0003",
        "0002",
        """op.alter_column("todos", "priority", type_=sa.BigInteger())
    op.alter_column("todos", "priority", server_default="0")
    op.execute("UPDATE todos SET priority = 0 WHERE priority IS NULL")
    op.alter_column("todos", "priority", nullable=False)
    op.alter_column("users", "note", new_column_name="remark")""",
        """op.alter_column("users", "remark", new_column_name="note")
    op.alter_column("todos", "priority", nullable=True)
    op.alter_column("todos", "priority", server_default=None)
    op.alter_column("todos", "priority", type_=sa.Integer())""",
    ),
    Revision(
        "0004",
        "0003",
        """op.create_unique_constraint("uq_users_remark", "users", ["remark"])
    op.create_check_constraint("ck_todos_priority", "todos", "priority >= 0")
    op.create_index("ix_todos_priority", "todos", ["priority"])""",
        """op.drop_index("ix_todos_priority", table_name="todos")
    op.drop_constraint("ck_todos_priority", "todos", type_="check")
    op.drop_constraint("uq_users_remark", "users", type_="unique")""",
    ),
    Revision(
        "0005",
        "0004",
        """op.create_table(
        "labels",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("todo_id", sa.BigInteger(), sa.ForeignKey("todos.id"), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
    )
    op.create_index("ix_labels_todo_id", "labels", ["todo_id"])
    op.drop_column("todos", "priority")""",
        """op.add_column("todos", sa.Column("priority", sa.BigInteger(), server_default="0",
        nullable=False))
    op.create_check_constraint("ck_todos_priority", "todos", "priority >= 0")
    op.create_index("ix_todos_priority", "todos", ["priority"])
    op.drop_table("labels")""",
    ),
]
"""Every kind of DDL that Citus refuses inside a multi-statement string: drop column, alter type,
set default, set not null, rename, named unique and check constraints, create and drop index;
plus add column, add table with a foreign key inside the schema, and a data update."""


async def test_every_kind_of_revision_goes_through_tenantry_migrate_up_and_down(
    fleet: Fleet, tmp_path: Path
) -> None:
    ini = scratch_alembic(tmp_path, KINDS_OF_REVISION)
    await fleet.add_tenants("k", 3)
    before = {t.schema: await catalog_of(fleet.engine, t.schema) for t in fleet.tenants}
    for target, expected in [("0002", "0002"), ("head", "0005"), ("0003", "0003")]:
        up = await asyncio.to_thread(run_tenantry, "migrate", "--to", target, env=fleet.env(ini))
        assert up.returncode == 0, up.stdout + up.stderr
        for tenant in fleet.tenants:
            assert await revision_of(fleet.engine, tenant.schema) == expected
    assert "remark" in await columns_of(fleet.engine, fleet.tenants[0].schema, "users")
    down = await asyncio.to_thread(
        run_tenantry, "migrate", "--to", PROJECT_HEAD, env=fleet.env(ini)
    )
    assert down.returncode == 0, down.stdout + down.stderr
    after = {t.schema: await catalog_of(fleet.engine, t.schema) for t in fleet.tenants}
    assert after == before


async def test_adding_an_identity_column_fails_on_citus_even_on_an_empty_table(
    fleet: Fleet, tmp_path: Path
) -> None:
    """What docs/scale-out.md says of identity columns: refused, whether the table has rows or
    not, and the tenant is left untouched at its revision."""
    identity = Revision(
        "0002",
        PROJECT_HEAD,
        'op.add_column("songs", sa.Column("n", sa.BigInteger(), sa.Identity()))',
        'op.drop_column("songs", "n")',
    )
    ini = scratch_alembic(tmp_path, [identity])
    await fleet.add_tenants("i", 1)
    run = await asyncio.to_thread(run_tenantry, "migrate", env=fleet.env(ini))
    assert run.returncode != 0
    assert "cannot execute ADD COLUMN commands involving identity columns" in run.stdout
    assert await revision_of(fleet.engine, fleet.tenants[0].schema) == PROJECT_HEAD


def indexed_metadata() -> MetaData:
    """The service's tables plus what a model with indexes of its own adds."""
    metadata = MetaData()
    for table in TenantBase.metadata.sorted_tables:
        copy = table.to_metadata(metadata)
        if copy.name == "todos":
            Index("ix_todos_created_at", copy.c.created_at)
            Index("ix_todos_live", copy.c.id, postgresql_where=copy.c.deleted_at.is_(None))
        if copy.name == "songs":
            UniqueConstraint(copy.c.name, copy.c.artist, name="uq_songs_name_artist")
    return metadata


async def test_onboarding_with_indexed_models(
    engine: AsyncEngine, database: str, tracks: Tracks, new_slug: str
) -> None:
    blueprint = TenantBlueprint.from_models(tracks, indexed_metadata())
    tenant = await create_tenant(engine, blueprint, new_slug)
    where = await placement(engine, tenant.schema, "todos")
    async with on_worker(database, where.host, where.port) as worker:
        await worker.execute("SET citus.override_table_visibility TO off")  # shards show
        indexes = await worker.fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = $1", tenant.schema
        )
    names = {row["indexname"] for row in indexes}
    shard_suffix = where.shard.rsplit("_", 1)[1]
    assert f"ix_todos_created_at_{shard_suffix}" in names
    assert f"ix_todos_live_{shard_suffix}" in names


async def test_a_schema_moves_to_the_other_worker_under_request_load_without_a_failed_request(
    engine: AsyncEngine, database: str, api: str, tenant: CreatedTenant
) -> None:
    source = await placement(engine, tenant.schema, "todos")
    target = other_worker(source.host, source.port)
    statuses: list[int] = []
    created: set[int] = set()
    flowing, moved = asyncio.Event(), asyncio.Event()

    async def load() -> None:
        async with client(api, tenant.slug, tenant.api_key) as http:
            while not moved.is_set():
                response = await http.post("/todos", json={"content": f"n{len(statuses)}"})
                statuses.append(response.status_code)
                if response.status_code == 201:
                    created.add(response.json()["id"])
                statuses.append((await http.get("/todos?limit=5")).status_code)
                if len(statuses) >= 20:
                    flowing.set()

    async def move() -> None:
        await flowing.wait()  # requests are flowing before the move starts
        async with engine.connect() as conn:
            await conn.execute(
                text(
                    "SELECT citus_schema_move(CAST(:schema AS regnamespace),"
                    " CAST(:host AS text), CAST(:port AS integer))"
                ),
                {"schema": tenant.schema, "host": target[0], "port": target[1]},
            )
            await conn.commit()
        moved.set()

    await asyncio.gather(load(), load(), move())
    destination = await placement(engine, tenant.schema, "todos")
    assert (destination.host, destination.port) == target
    assert statuses and set(statuses) == {200, 201}, f"{len(statuses)} requests"
    async with on_worker(database, *target) as worker:
        moved_rows = {
            row["id"] for row in await worker.fetch(f"SELECT id FROM {destination.shard}")
        }
    async with engine.connect() as conn:
        seen = set(await conn.scalars(text(f"SELECT id FROM {tenant.schema}.todos")))
    assert seen == created, "every row a request created is there, through the coordinator"
    assert moved_rows == created, "and physically on the worker the tenant moved to"


async def test_a_request_waiting_on_a_lock_on_a_worker_is_named_on_the_coordinator(
    engine: AsyncEngine, api: str, tenant: CreatedTenant
) -> None:
    request_id = "req-" + secrets.token_hex(4)
    tag = f"tenantry:{tenant.slug}:{request_id}"
    async with client(api, tenant.slug, tenant.api_key) as http:
        async with request_waiting_on_a_row_lock(
            http, engine, tenant.schema, "tenantry:", headers={"X-Request-ID": request_id}
        ) as (waiting, put):
            assert waiting["application_name"] == tag
            async with engine.connect() as conn:
                pairs = (await conn.execute(text(WHO_BLOCKS_WHOM))).all()
                coordinator_view = (
                    await conn.execute(
                        text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                        {"pid": waiting["pid"]},
                    )
                ).scalar_one()
                waits = (await conn.execute(text(LOCK_WAITS))).all()
            assert [row.waiting for row in pairs] == [tag]
            assert coordinator_view != "Lock", "the coordinator's backend waits on its worker"
            assert [(row.application_name, row.wait_event_type) for row in waits] == [(tag, "Lock")]
        assert (await put).status_code == 200


async def test_an_import_becomes_a_distributed_schema_with_its_rows_on_one_worker(
    engine: AsyncEngine, database: str, api: str, tenant: CreatedTenant, tmp_path: Path
) -> None:
    """An import builds the schema from this code's revisions (as onboarding does) and copies
    the rows in: on Citus the new schema is distributed, its rows sit on the worker holding it,
    the coordinator's shell stays empty, and it serves requests."""
    content = "imported-" + secrets.token_hex(4)
    async with client(api, tenant.slug, tenant.api_key) as http:
        assert (await http.post("/todos", json={"content": content})).status_code == 201
    archive = tmp_path / "export.dump"
    exported = await asyncio.to_thread(run_tenantry, "tenants", "export", tenant.slug, str(archive))
    assert exported.returncode == 0, exported.stderr
    slug = "c-" + secrets.token_hex(4)
    imported = await asyncio.to_thread(
        run_tenantry, "tenants", "import", str(archive), "--as", slug, "--json"
    )
    assert imported.returncode == 0, imported.stderr
    copy = json.loads(imported.stdout)
    async with engine.connect() as conn:
        distributed = await conn.scalar(
            text("SELECT count(*) FROM citus_schemas WHERE schema_name::text = :schema"),
            {"schema": copy["schema_name"]},
        )
        local = await conn.scalar(
            text("SELECT pg_relation_size(CAST(:table AS regclass))"),
            {"table": f"{copy['schema_name']}.todos"},
        )
    assert distributed == 1
    assert local == 0, "the coordinator's shell table holds no rows"
    where = await placement(engine, copy["schema_name"], "todos")
    async with on_worker(database, where.host, where.port) as worker:
        rows = await worker.fetch(f"SELECT content FROM {where.shard}")
    assert content in [row["content"] for row in rows]
    async with client(api, slug, copy["api_key"]) as http:
        listed = await http.get("/todos")
        assert listed.status_code == 200
        assert content in [todo["content"] for todo in listed.json()["items"]]
        assert (await http.post("/todos", json={"content": "after"})).status_code == 201


def test_the_cluster_under_test_is_the_one_configured() -> None:
    """A guard against a Citus run that silently tests one server: two workers, distinct ports."""
    assert len(citus_workers()) == 2
    assert len({port for _, port in citus_workers()}) == 2
