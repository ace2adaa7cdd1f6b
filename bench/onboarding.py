"""How long a new tenant takes, and whether that depends on the length of the migration history.

    python -m bench.onboarding [--tenants 200] [--extra-revisions 50]

Creates tenants in a throwaway database (on TENANTRY_DATABASE_URL's server, or the embedded one;
`--in-place` uses that database itself and drops only what it created) four ways:

- raw asyncpg DDL: CREATE SCHEMA and the head schema's DDL on a bare connection (the floor);
- create_tenant: the real onboarding (registry row, schema, head DDL + stamp, key, NOTIFY);
- create_tenant replaying every revision as one pre-rendered script;
- create_tenant running every revision through Alembic.

and all four again with `--extra-revisions` synthetic revisions appended to a temporary copy of
`migrations/` (add then drop a column and index, create then drop a table, widen then narrow
a column: the head schema stays the same, only the history grows). Each round creates one
tenant per method and history, so drifting load and catalog growth hit every method alike. The
first round's schemas are checked to have identical catalogs. Prints p50/p95/p99 and ratios.
"""

import argparse
import asyncio
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from service.models import TenantBase
from service.paths import ALEMBIC_INI, PROJECT_ROOT
from tenancy.database import asyncpg_dsn, bootstrap_url, create_engine, ensure_database
from tenancy.lifecycle.blueprint import TenantBlueprint
from tenancy.lifecycle.catalog import catalog_differences, schema_catalog
from tenancy.lifecycle.onboarding import create_tenant
from tenancy.lifecycle.schema_builders.head_ddl import HeadDDL
from tenancy.migrate.tracks import Tracks, load_tracks, upgrade_shared
from tenancy.naming import quote_schema, tenant_schema
from tenancy.roles import runtime_group, tenant_grants
from tenancy.search_path import ENTER_SCHEMA_ASYNCPG, search_path_value
from tenancy.settings import TenancySettings
from tenancy.testing.drop import drop_database
from tenancy.testing.replay_builders import ReplayAlembic, ReplayScript

FLOOR_VS_RAW, GOAL_VS_RAW, FLAT = 3.0, 1.5, 1.2

SYNTHETIC_STEPS = [
    (
        "op.add_column('todos', sa.Column('legacy_{k}', sa.Text()))\n"
        "    op.create_index('ix_todos_legacy_{k}', 'todos', ['legacy_{k}'])",
        "op.drop_index('ix_todos_legacy_{k}', 'todos')\n    op.drop_column('todos', 'legacy_{k}')",
    ),
    (
        "op.create_table('scratch_{k}', sa.Column('id', sa.BigInteger(), sa.Identity(),"
        " primary_key=True), sa.Column('user_id', sa.BigInteger(), sa.ForeignKey('users.id')),"
        " sa.Column('note', sa.Text()))\n"
        "    op.create_index('ix_scratch_{k}_user_id', 'scratch_{k}', ['user_id'])",
        "op.drop_table('scratch_{k}')",
    ),
    (
        "op.alter_column('users', 'name', type_=sa.String(300))",
        "op.alter_column('users', 'name', type_=sa.String(200))",
    ),
]

REVISION = '''"""bench history {k}: one step of a synthetic history; the head schema is unchanged"""

import sqlalchemy as sa
from alembic import op

revision = "bench_{k:03d}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    {upgrade}


def downgrade() -> None:
    pass
'''


@dataclass
class Method:
    name: str
    create: Callable[[str], Awaitable[None]]
    millis: list[float]


def write_history(folder: Path, tracks: Tracks, extra: int) -> Tracks:
    """A copy of migrations/ and alembic.ini with `extra` revisions after the real head."""
    shutil.copytree(PROJECT_ROOT / "migrations", folder / "migrations")
    shutil.copy(ALEMBIC_INI, folder / "alembic.ini")
    down = tracks.tenant_head
    for k in range(extra):
        forward, backward = SYNTHETIC_STEPS[(k // 2) % len(SYNTHETIC_STEPS)]
        body = (forward if k % 2 == 0 else backward).format(k=k // 2)
        if k == extra - 1 and k % 2 == 0:
            body = f"{body}\n    {backward.format(k=k // 2)}"  # an odd count still nets to zero
        path = folder / "migrations" / "versions" / f"bench_{k:03d}.py"
        path.write_text(REVISION.format(k=k, down=down, upgrade=body))
        down = f"bench_{k:03d}"
    return load_tracks(folder / "alembic.ini")


def methods_for(engine: AsyncEngine, raw: asyncpg.Connection, tracks: Tracks) -> list[Method]:
    head_sql = HeadDDL(tracks, TenantBase.metadata).script()

    async def raw_ddl(slug: str) -> None:
        """The same schema, grants to a runtime role included where one is set up."""
        schema = tenant_schema(slug)
        async with raw.transaction():
            await raw.execute(f"CREATE SCHEMA {quote_schema(schema)}")
            await raw.execute(ENTER_SCHEMA_ASYNCPG, search_path_value(schema))
            await raw.execute(head_sql)
            group = runtime_group(await raw.fetchval("SELECT current_database()"))
            if await raw.fetchval("SELECT to_regrole($1) IS NOT NULL", group):
                await raw.execute(";".join(tenant_grants(schema, group)))

    def onboard(blueprint: TenantBlueprint) -> Callable[[str], Awaitable[None]]:
        async def create(slug: str) -> None:
            await create_tenant(engine, blueprint, slug)

        return create

    return [
        Method("raw asyncpg DDL (floor)", raw_ddl, []),
        Method(
            "create_tenant: head DDL + stamp",
            onboard(TenantBlueprint.from_models(tracks, TenantBase.metadata)),
            [],
        ),
        Method(
            "create_tenant: every revision, one script",
            onboard(TenantBlueprint(ReplayScript(tracks))),
            [],
        ),
        Method(
            "create_tenant: every revision via Alembic",
            onboard(TenantBlueprint(ReplayAlembic(tracks))),
            [],
        ),
    ]


async def run_all(
    engine: AsyncEngine,
    raw: asyncpg.Connection,
    histories: dict[str, Tracks],
    tenants: int,
    created: list[str],
) -> dict[str, list[Method]]:
    """Round after round, one tenant per method and history in a shuffled order, so that
    drifting load, catalog growth and the aftermath of a heavy neighbour hit all alike."""
    results = {label: methods_for(engine, raw, tracks) for label, tracks in histories.items()}
    runs = [(h, n, m) for h, methods in enumerate(results.values()) for n, m in enumerate(methods)]
    order = random.Random(5)
    for round_ in range(tenants):
        order.shuffle(runs)
        for h, n, method in runs:
            slug = f"b{h}-{n}-{round_}-{secrets.token_hex(2)}"
            created.append(slug)
            start = time.perf_counter()
            await method.create(slug)
            method.millis.append((time.perf_counter() - start) * 1000)
        if round_ == 0:
            for h, label in enumerate(results):
                first = [slug for slug in created if slug.startswith(f"b{h}-")]
                first.sort(key=lambda slug: int(slug.split("-")[1]))
                await check_identical(engine, [tenant_schema(slug) for slug in first], label)
    return results


async def check_identical(engine: AsyncEngine, schemas: list[str], label: str) -> None:
    """Every method must have built the same schema as running every revision (the last one)."""
    async with engine.connect() as conn:
        catalogs = [await schema_catalog(conn, schema) for schema in schemas]
    for schema, catalog in zip(schemas, catalogs, strict=True):
        differences = catalog_differences(catalogs[-1], catalog)
        if differences:
            sys.exit(f"{label}: {schema} differs from running every revision: {differences[:5]}")
    print(f"identical catalogs ({label}): {len(schemas)} schemas, every method")


def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def p50(method: Method) -> float:
    return percentile(method.millis, 50)


def report(results: dict[str, list[Method]], tenants: int, server: str) -> None:
    print(f"\n{tenants} tenants per method and history, {server}\n")
    print("| history | method | p50 ms | p95 ms | p99 ms |")
    print("|---|---|---:|---:|---:|")
    for history, methods in results.items():
        for m in methods:
            cells = " | ".join(f"{percentile(m.millis, q):.1f}" for q in (50, 95, 99))
            print(f"| {history} | {m.name} | {cells} |")
    (short, (raw, fast, _, alembic)), (long, (raw_l, fast_l, _, alembic_l)) = results.items()
    print()
    for history, ratio in ((short, p50(fast) / p50(raw)), (long, p50(fast_l) / p50(raw_l))):
        verdict = "ok" if ratio <= FLOOR_VS_RAW else "OVER"
        goal = "met" if ratio <= GOAL_VS_RAW else "missed"
        print(
            f"- create_tenant / raw DDL, p50, {history}: {ratio:.2f}x "
            f"(floor <= {FLOOR_VS_RAW}: {verdict}; goal <= {GOAL_VS_RAW}: {goal})"
        )
    flat = p50(fast_l) / p50(fast)
    print(
        f"- create_tenant p50, {long} / {short}: {flat:.2f}x "
        f"(floor <= {FLAT}: {'ok' if flat <= FLAT else 'OVER'})"
    )
    replay = p50(alembic_l) / p50(alembic)
    print(f"- every revision via Alembic p50, {long} / {short}: {replay:.2f}x")


def revisions(tracks: Tracks) -> str:
    count = len(list(tracks.tenant.walk_revisions()))
    return f"{count} revision" + ("" if count == 1 else "s")


async def main(tenants: int, extra: int, in_place: bool) -> None:
    configured = await bootstrap_url(TenancySettings())
    url = make_url(configured)
    if not in_place:
        url = url.set(database=f"tenantry_bench_{secrets.token_hex(4)}")
    url_text = url.render_as_string(hide_password=False)
    await ensure_database(url_text)
    engine = create_engine(url_text, TenancySettings(database_url=url_text))
    raw = await asyncpg.connect(asyncpg_dsn(url_text))
    real, created = load_tracks(ALEMBIC_INI), []
    try:
        async with engine.begin() as conn:
            await conn.run_sync(upgrade_shared, real)
        version = await raw.fetchval("SHOW server_version")
        with tempfile.TemporaryDirectory(prefix="tenantry-bench-") as folder:
            longer = write_history(Path(folder), real, extra)
            histories = {revisions(real): real, revisions(longer): longer}
            results = await run_all(engine, raw, histories, tenants, created)
        report(results, tenants, f"PostgreSQL {version}")
    finally:
        if in_place:
            await drop_tenants(raw, created)
        await raw.close()
        await engine.dispose()
        if not in_place:
            await drop_database(url_text)


async def drop_tenants(raw: asyncpg.Connection, slugs: list[str]) -> None:
    """--in-place: remove what the bench created (their revisions may exist only in the bench)."""
    async with raw.transaction():
        await raw.execute("DELETE FROM tenantry.tenants WHERE slug = ANY($1::text[])", slugs)
        for slug in slugs:
            await raw.execute(f"DROP SCHEMA IF EXISTS {quote_schema(tenant_schema(slug))} CASCADE")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=200, help="tenants per method and history")
    parser.add_argument("--extra-revisions", type=int, default=50, help="synthetic revisions")
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="use the configured database itself (its shared schema must be migratable) and "
        "drop only the bench's tenants afterwards, instead of a throwaway database",
    )
    args = parser.parse_args()
    asyncio.run(main(args.tenants, args.extra_revisions, args.in_place))
