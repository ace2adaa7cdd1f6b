"""Liveness and readiness probes."""

import asyncio
import time

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import text

from tenancy.problems import Problem, problem_responses
from tenancy.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get("/", include_in_schema=False)
async def home() -> RedirectResponse:
    """What a browser opens first: the interactive docs (307), not a 400 about a header."""
    return RedirectResponse("/docs", status_code=307)


SHARED_REVISION = text("SELECT version_num FROM tenantry.alembic_version")


class Readiness:
    """The last readiness check, reused for `seconds`; one check at a time however many probes
    arrive, so /readyz costs at most one database transaction per `seconds` per process."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.checks = 0  # database checks made (for tests and curiosity)
        self._lock = asyncio.Lock()
        self._checked_at = float("-inf")
        self._result: dict[str, str] | Problem = Problem(503, "not-ready", "Not checked yet")

    async def check(self, runtime: Runtime) -> dict[str, str]:
        """The readiness body; raises Problem(503) when not ready."""
        async with self._lock:
            if time.monotonic() - self._checked_at >= self.seconds:
                self._result = await _check(runtime)
                self._checked_at = time.monotonic()
                self.checks += 1
            result = self._result
        if isinstance(result, Problem):
            raise result
        return result


async def _check(runtime: Runtime) -> dict[str, str] | Problem:
    try:
        async with runtime.engine.connect() as conn:
            revision = await conn.scalar(SHARED_REVISION)
    except Exception as exc:
        return Problem(503, "not-ready", "Database unreachable", type(exc).__name__)
    if revision != runtime.tracks.shared_head:
        return Problem(503, "not-ready", "Shared schema is not at head", f"at {revision}")
    return {"status": "ready", "shared_revision": revision}


@router.get("/healthz")
@router.head("/healthz", operation_id="healthz_head")  # uptime monitors and probes send HEAD
async def healthz() -> dict[str, str]:
    """The process is up; says nothing about the database."""
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(503))
@router.head("/readyz", responses=problem_responses(503), operation_id="readyz_head")
async def readyz(request: Request) -> dict[str, str]:
    """Ready when the database answers and the shared schema is at the code's head (checked at
    most once per TENANTRY_READINESS_CACHE_SECONDS)."""
    readiness: Readiness = request.app.state.readiness  # set by service.app.create_app
    return await readiness.check(request.state.runtime)
