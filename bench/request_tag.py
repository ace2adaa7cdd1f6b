"""How to show a request's tenant in pg_stat_activity: cost of each scheme per transaction.

Every scheme runs the request path's shape on one pooled connection: BEGIN, set the tenant's
search_path, one primary-key SELECT, COMMIT. Rounds are interleaved so that drift hits all
schemes alike. Prints microseconds per transaction and the ratio to the untagged baseline.

    .venv/bin/python -m bench.request_tag [--transactions 2000] [--rounds 3] [--tenants 500]
"""

import argparse
import asyncio
import secrets
import statistics
import time

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.database import bootstrap_url, create_engine, drop_database, ensure_database
from tenancy.observability.db_tag import SET_TENANT_SEARCH_PATH_AND_TAG
from tenancy.session import SET_TENANT_SEARCH_PATH
from tenancy.settings import TenancySettings

SCHEMA = "tenant_bench"
QUERY = "SELECT id, note FROM items WHERE id = :id"


async def baseline(conn: AsyncConnection, i: int, _tenants: int) -> None:
    await conn.execute(SET_TENANT_SEARCH_PATH, {"schema": SCHEMA})
    await conn.execute(text(QUERY), {"id": i % 100 + 1})


async def application_name(conn: AsyncConnection, i: int, _tenants: int) -> None:
    tag = f"tenantry:acme:{secrets.token_hex(8)}"
    await conn.execute(SET_TENANT_SEARCH_PATH_AND_TAG, {"schema": SCHEMA, "tag": tag})
    await conn.execute(text(QUERY), {"id": i % 100 + 1})


async def comment_per_request(conn: AsyncConnection, i: int, _tenants: int) -> None:
    await conn.execute(SET_TENANT_SEARCH_PATH, {"schema": SCHEMA})
    tagged = f"/* tenant=acme request={secrets.token_hex(8)} */ {QUERY}"
    await conn.execute(text(tagged), {"id": i % 100 + 1})


async def comment_per_tenant(conn: AsyncConnection, i: int, tenants: int) -> None:
    await conn.execute(SET_TENANT_SEARCH_PATH, {"schema": SCHEMA})
    tagged = f"/* tenant=t{i % tenants} */ {QUERY}"
    await conn.execute(text(tagged), {"id": i % 100 + 1})


SCHEMES = {
    "search_path only (no tag)": baseline,
    "application_name in the same set_config": application_name,
    "SQL comment per request": comment_per_request,
    "SQL comment per tenant": comment_per_tenant,
}


async def run_scheme(engine, scheme, transactions: int, tenants: int) -> float:
    async with engine.connect() as conn:
        started = time.perf_counter()
        for i in range(transactions):
            async with conn.begin():
                await scheme(conn, i, tenants)
        return (time.perf_counter() - started) / transactions * 1e6


async def main(transactions: int, rounds: int, tenants: int) -> None:
    server = await bootstrap_url(TenancySettings())
    url = make_url(server).set(database=f"tenantry_bench_{secrets.token_hex(4)}")
    url = url.render_as_string(hide_password=False)
    await ensure_database(url)
    engine = create_engine(url, TenancySettings(database_url=url, pool_size=1))
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
            await conn.execute(text(f"CREATE TABLE {SCHEMA}.items (id int PRIMARY KEY, note text)"))
            await conn.execute(
                text(
                    f"INSERT INTO {SCHEMA}.items SELECT g, 'n' || g FROM generate_series(1, 100) g"
                )
            )
        timings: dict[str, list[float]] = {name: [] for name in SCHEMES}
        for _ in range(rounds):
            for name, scheme in SCHEMES.items():
                timings[name].append(await run_scheme(engine, scheme, transactions, tenants))
    finally:
        await engine.dispose()
        await drop_database(url)

    base = statistics.median(timings["search_path only (no tag)"])
    print(f"{transactions} transactions x {rounds} rounds, one connection, {tenants} tenants")
    print(f"{'scheme':<42} {'us/txn':>8} {'ratio':>6}")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"{name:<42} {median:8.0f} {median / base:6.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tenants", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.transactions, args.rounds, args.tenants))
