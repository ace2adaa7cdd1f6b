"""What happened to each tenant, and the retry rules every executor shares (no Alembic: a run
with nothing to do reports through here without loading it)."""

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from tenancy.migrate.census import TenantRef
from tenancy.one_line import first_line_with_type

if TYPE_CHECKING:
    from tenancy.migrate.targets import Step

LOCK_CONFLICTS = frozenset({"55P03", "40P01"})
"""lock_not_available (lock_timeout expired) and deadlock_detected: worth another attempt."""


class Outcome(StrEnum):
    MIGRATED = "migrated"
    CURRENT = "current"
    FAILED = "failed"
    SKIPPED = "skipped"
    MISSING = "missing"
    """Registered, but its schema is gone: nothing to migrate until the operator settles it."""
    MOVED = "moved"
    """Its revision changed between plan and execution: untouched, planned again."""


@dataclass(frozen=True, slots=True)
class LockPolicy:
    """How long one tenant's DDL may wait for a lock, and how often it tries again."""

    timeout_ms: int = 2000
    retries: int = 3
    backoff: float = 0.2
    """Seconds before the first retry; doubled before each next one."""

    @property
    def setting(self) -> str:
        return f"{self.timeout_ms}ms"

    def pause(self, attempt: int) -> float:
        return self.backoff * 2 ** (attempt - 1)


@dataclass(frozen=True, slots=True)
class TenantResult:
    tenant: TenantRef
    from_rev: str | None
    to_rev: str | None
    outcome: Outcome
    error: str | None = None
    seconds: float = 0.0
    attempts: int = 0

    def record(self) -> dict[str, object]:
        """One JSON record for `--json`."""
        return {
            "tenant": self.tenant.slug,
            "schema": self.tenant.schema,
            "from": self.from_rev,
            "to": self.to_rev,
            "status": str(self.outcome),
            "error": self.error,
            "ms": round(self.seconds * 1000, 3),
            "attempts": self.attempts,
        }


class Attempt:
    """Times one tenant's migration and turns how it ended into a TenantResult."""

    def __init__(self, tenant: TenantRef, step: "Step") -> None:
        self.tenant = tenant
        self.step = step
        self.count = 0
        self._started = time.perf_counter()

    def ended(self, outcome: Outcome, error: str | None = None) -> TenantResult:
        return TenantResult(
            self.tenant,
            self.step.from_rev,
            self.step.to_rev,
            outcome,
            error,
            time.perf_counter() - self._started,
            self.count,
        )

    def failed(self, exc: BaseException) -> TenantResult:
        return self.ended(Outcome.FAILED, first_line_with_type(exc))

    def moved(self, found: tuple[str, ...]) -> TenantResult:
        return self.ended(Outcome.MOVED, f"found at {', '.join(found) or 'base'}")


def is_lock_conflict(exc: BaseException) -> bool:
    """A lock timeout or deadlock, raised by asyncpg itself or wrapped by SQLAlchemy."""
    for candidate in (exc, getattr(exc, "orig", None)):
        if getattr(candidate, "sqlstate", None) in LOCK_CONFLICTS:
            return True
    return False


def expected_heads(step: "Step") -> tuple[str, ...]:
    return () if step.from_rev is None else (step.from_rev,)


@dataclass
class Summary:
    """The end of a run: what the shared schema did and one result per tenant."""

    shared_from: str | None
    shared_to: str | None
    results: list[TenantResult]
    seconds: float

    def count(self, outcome: Outcome) -> int:
        return sum(1 for result in self.results if result.outcome is outcome)

    @property
    def failures(self) -> list[TenantResult]:
        return [result for result in self.results if result.outcome is Outcome.FAILED]

    @property
    def missing(self) -> list[TenantResult]:
        return [result for result in self.results if result.outcome is Outcome.MISSING]

    @property
    def ok(self) -> bool:
        bad = (Outcome.FAILED, Outcome.SKIPPED, Outcome.MISSING)
        return not any(r.outcome in bad for r in self.results)

    def totals(self) -> dict[str, object]:
        """`missing` (registered tenants without a schema) only shows when there are some."""
        return {
            "migrated": self.count(Outcome.MIGRATED),
            "current": self.count(Outcome.CURRENT),
            "failed": self.count(Outcome.FAILED),
            "skipped": self.count(Outcome.SKIPPED),
            **({"missing": len(self.missing)} if self.missing else {}),
            "seconds": round(self.seconds, 3),
            "shared": {"from": self.shared_from, "to": self.shared_to},
        }
