"""Growing the fleet: real onboardings, timed one by one, and one seeded todo per tenant.

Tenants are made by `tenancy.lifecycle.onboarding.create_tenant` with the service's blueprint (what
`tenantry tenants create` does), several at once. Their API keys are appended to a keys file as
they are made, so a kept fleet database can be measured again or grown further in a later run.
The seeding (one todo naming the tenant, for the request benchmark to find) runs afterwards
on raw connections and is not part of the onboarding time.
"""

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.lanes import each_schema
from service.onboarding import tenant_blueprint
from service.paths import ALEMBIC_INI
from tenancy.lifecycle.onboarding import create_tenant
from tenancy.migrate.tracks import load_tracks
from tenancy.naming import quote_schema, tenant_schema

SLUG_DIGITS = 6
"""Fixed-width numbers: no slug is a prefix of another, so a body naming one names only it."""


def fleet_slug(n: int) -> str:
    return f"fleet-{n:0{SLUG_DIGITS}d}"


@dataclass(frozen=True)
class FleetTenant:
    slug: str
    api_key: str

    @property
    def schema(self) -> str:
        return tenant_schema(self.slug)


@dataclass
class Growth:
    """One growth segment: how many were made, how long it took, each onboarding's latency."""

    created: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    finished_at: list[float] = field(default_factory=list)
    """perf_counter() at each completion, for the rate at the end of the segment."""

    def tail_rate(self, last: int) -> float:
        """Tenants per second over the segment's last `last` onboardings (rate at size N)."""
        done = sorted(self.finished_at)
        if len(done) < 2:
            return float("nan")
        window = done[-min(last, len(done)) :]
        span = window[-1] - window[0]
        return (len(window) - 1) / span if span > 0 else float("nan")


class KeysFile:
    """slug + key per line (JSON); the file is the fleet's memory between runs."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[FleetTenant]:
        if not self.path.exists():
            return []
        lines = self.path.read_text().splitlines()
        return [FleetTenant(**json.loads(line)) for line in lines if line]

    def append(self, tenant: FleetTenant) -> None:
        with self.path.open("a") as out:
            out.write(json.dumps({"slug": tenant.slug, "api_key": tenant.api_key}) + "\n")


async def grow(
    engine: AsyncEngine,
    tenants: list[FleetTenant],
    target: int,
    concurrency: int,
    keys: KeysFile,
    progress_every: int = 5000,
) -> Growth:
    """Onboard tenants until there are `target`, `concurrency` at once."""
    blueprint = tenant_blueprint(load_tracks(ALEMBIC_INI))
    numbers = iter(range(len(tenants), target))
    growth = Growth()
    started = time.perf_counter()

    async def onboard() -> None:
        for n in numbers:
            begun = time.perf_counter()
            created = await create_tenant(engine, blueprint, fleet_slug(n))
            growth.finished_at.append(time.perf_counter())
            growth.latencies.append(growth.finished_at[-1] - begun)
            tenant = FleetTenant(created.slug, created.api_key)
            tenants.append(tenant)
            keys.append(tenant)
            if len(tenants) % progress_every == 0:
                elapsed = time.perf_counter() - started
                print(f"    {len(tenants):,} tenants ({elapsed:.0f} s)", flush=True)

    await asyncio.gather(*(onboard() for _ in range(concurrency)))
    growth.seconds = time.perf_counter() - started
    growth.created = len(growth.latencies)
    tenants.sort(key=lambda tenant: tenant.slug)
    return growth


async def seed_todos(url: str, tenants: list[FleetTenant], connections: int = 4) -> None:
    """One todo per tenant whose content names the tenant (skipped where there is one)."""
    slugs = {tenant.schema: tenant.slug for tenant in tenants}

    async def seed(conn: asyncpg.Connection, schema: str) -> None:
        todos = f"{quote_schema(schema)}.todos"
        if not await conn.fetchval(f"SELECT EXISTS (SELECT FROM {todos})"):
            await conn.execute(
                f"INSERT INTO {todos} (content) VALUES ($1)", f"{slugs[schema]} todo"
            )

    await each_schema(url, slugs, connections, seed)
