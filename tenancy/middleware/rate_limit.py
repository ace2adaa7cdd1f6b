"""Per-tenant rate limit: a token bucket per tenant, in this process, checked after the tenant
middleware admitted the request. Over the limit: 429 problem+json with Retry-After."""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from tenancy import problems
from tenancy.rate_limit_records import effective_limit
from tenancy.registry import ResolvedTenant
from tenancy.state_keys import TENANT_KEY

_MAX_BUCKETS = 100_000


@dataclass(slots=True)
class TokenBucket:
    rate: float
    burst: int
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Spend one token: 0.0 if there was one, else the seconds until there will be one."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    """Buckets by slug. A tenant's own limit (registry) wins over the settings' default; with
    neither, the tenant is not limited. A changed limit starts a fresh, full bucket."""

    def __init__(
        self,
        default_rate: float | None,
        default_burst: int | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default_rate = default_rate
        self.default_burst = default_burst
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def limit_of(self, tenant: ResolvedTenant) -> tuple[float, int] | None:
        return effective_limit(
            tenant.rate_limit_per_second,
            tenant.rate_limit_burst,
            self.default_rate,
            self.default_burst,
        )

    def wait_time(self, tenant: ResolvedTenant) -> float:
        """0.0 when the request may go ahead (a token was spent), else seconds to wait."""
        limit = self.limit_of(tenant)
        if limit is None:
            return 0.0
        now = self.clock()
        bucket = self._buckets.get(tenant.slug)
        if bucket is None or (bucket.rate, bucket.burst) != limit:
            if len(self._buckets) >= _MAX_BUCKETS:
                self._forget_full_buckets(now)
            bucket = self._buckets[tenant.slug] = TokenBucket(*limit, tokens=limit[1], updated=now)
        return bucket.take(now)

    def _forget_full_buckets(self, now: float) -> None:
        """A bucket that has refilled is the same as a new one; if none has, start over."""
        idle = [
            s for s, b in self._buckets.items() if b.tokens + (now - b.updated) * b.rate >= b.burst
        ]
        for slug in idle or list(self._buckets):
            del self._buckets[slug]


class RateLimitMiddleware:
    """Pure ASGI, inside TenantMiddleware: requests without an admitted tenant pass untouched."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tenant = scope.get("state", {}).get(TENANT_KEY) if scope["type"] == "http" else None
        if tenant is not None:
            wait = self.limiter.wait_time(tenant)
            if wait > 0:
                retry_after = str(max(1, math.ceil(wait)))
                response = problems.rate_limited(retry_after).response(
                    headers={"Retry-After": retry_after}
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
