"""Liveness and readiness probes."""

from fastapi import APIRouter, Request
from sqlalchemy import text

from service.schemas import problem_responses
from tenancy.problems import Problem
from tenancy.runtime import Tenancy

router = APIRouter(tags=["health"])

SHARED_REVISION = text("SELECT version_num FROM tenantry.alembic_version")


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up; says nothing about the database."""
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(503))
async def readyz(request: Request) -> dict[str, str]:
    """Ready when the database answers and the shared schema is at the code's head."""
    runtime: Tenancy = request.state.tenancy
    try:
        async with runtime.engine.connect() as conn:
            revision = await conn.scalar(SHARED_REVISION)
    except Exception as exc:
        raise Problem(503, "not-ready", "Database unreachable", type(exc).__name__) from None
    if revision != runtime.tracks.shared_head:
        raise Problem(503, "not-ready", "Shared schema is not at head", f"at {revision}")
    return {"status": "ready", "shared_revision": revision}
