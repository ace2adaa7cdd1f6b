"""Per-tenant rate limits in the registry; every API process sees a change at once (NOTIFY)."""

import math
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenancy.lifecycle.errors import UnknownTenant
from tenancy.registry import announce_change, tenants


def effective_limit(
    own_rate: float | None,
    own_burst: int | None,
    default_rate: float | None,
    default_burst: int | None,
) -> tuple[float, int] | None:
    """(requests per second, burst) for a tenant, or None: not limited.

    The tenant's own values (registry) win over the defaults (settings); without a burst, the
    rate rounded up (at least 1). Here, not in tenancy.middleware.rate_limit, so that
    `tenantry limits` reaches it without importing Starlette.
    """
    rate = own_rate or default_rate
    if rate is None:
        return None
    return rate, own_burst or default_burst or max(1, math.ceil(rate))


@dataclass(frozen=True, slots=True)
class TenantLimit:
    slug: str
    per_second: float | None
    burst: int | None


async def set_rate_limit(
    engine: AsyncEngine, slug: str, per_second: float | None, burst: int | None
) -> None:
    """Both values at once; None for either means the settings' default for it (`limits clear`
    is both None). update_rate_limit changes one and keeps the other."""
    if (per_second is not None and per_second <= 0) or (burst is not None and burst < 1):
        raise ValueError("the rate must be > 0 and the burst >= 1")
    async with engine.begin() as conn:
        result = await conn.execute(
            update(tenants)
            .where(tenants.c.slug == slug)
            .values(rate_limit_per_second=per_second, rate_limit_burst=burst)
        )
        if result.rowcount == 0:
            raise UnknownTenant(f"unknown tenant {slug!r}")
        await announce_change(conn, slug)


class WouldBeUnlimited(ValueError):
    """The change would leave the tenant with no limit at all: `limits clear` says that outright."""


async def update_rate_limit(
    engine: AsyncEngine,
    slug: str,
    per_second: float | None = None,
    burst: int | None = None,
    *,
    default_rate: float | None = None,
) -> TenantLimit:
    """Change only the values given; the others keep the tenant's own value (or lack of one).

    Refused (WouldBeUnlimited) when the tenant would end up with no rate, own or default: a burst
    alone limits nothing, and "no limit" must not come out of a command that sets one.
    """
    if (per_second is not None and per_second <= 0) or (burst is not None and burst < 1):
        raise ValueError("the rate must be > 0 and the burst >= 1")
    async with engine.begin() as conn:
        current = (
            await conn.execute(
                select(tenants.c.rate_limit_per_second, tenants.c.rate_limit_burst)
                .where(tenants.c.slug == slug)
                .with_for_update()
            )
        ).first()
        if current is None:
            raise UnknownTenant(f"unknown tenant {slug!r}")
        limit = TenantLimit(
            slug,
            per_second if per_second is not None else current.rate_limit_per_second,
            burst if burst is not None else current.rate_limit_burst,
        )
        if limit.per_second is None and default_rate is None:
            raise WouldBeUnlimited(
                f"{slug} has no per-second rate (own or TENANTRY_RATE_LIMIT_PER_SECOND), so a "
                "burst alone limits nothing: give --per-second too"
            )
        await conn.execute(
            update(tenants)
            .where(tenants.c.slug == slug)
            .values(rate_limit_per_second=limit.per_second, rate_limit_burst=limit.burst)
        )
        await announce_change(conn, slug)
    return limit


async def tenant_limits(conn: AsyncConnection) -> list[TenantLimit]:
    """Tenants with a limit of their own."""
    rows = await conn.execute(
        select(tenants.c.slug, tenants.c.rate_limit_per_second, tenants.c.rate_limit_burst)
        .where(
            or_(tenants.c.rate_limit_per_second.isnot(None), tenants.c.rate_limit_burst.isnot(None))
        )
        .order_by(tenants.c.slug)
    )
    return [TenantLimit(*row) for row in rows]
