"""Admin routes, guarded by TENANTRY_ADMIN_TOKEN (refused outright when it is unset).

The same lifecycle as `tenantry tenants` / `tenantry keys`, for a back office: create, list,
suspend, resume, archive (DELETE), restore, and keys. Purging for good stays on the command line.
"""

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from pydantic import Field

from service.onboarding import tenant_blueprint
from service.schemas import Output, StrictInput
from tenancy.lifecycle.api_keys import create_key, list_keys, revoke_key
from tenancy.lifecycle.archive import archive_tenant, restore_tenant
from tenancy.lifecycle.catchup import SchemaNotUpgradable
from tenancy.lifecycle.errors import (
    ProcessBehind,
    SchemaMissing,
    TenantExists,
    TenantStateConflict,
    UnknownKey,
    UnknownTenant,
)
from tenancy.lifecycle.inventory import TenantSummary, tenant_inventory
from tenancy.lifecycle.onboarding import (
    DISPLAY_NAME_MAX_LENGTH,
    DISPLAY_NAME_PATTERN,
    create_tenant,
)
from tenancy.lifecycle.status import resume_tenant, suspend_tenant
from tenancy.naming import RESERVED_SLUGS, SLUG_PATTERN, InvalidSlug
from tenancy.one_line import first_line
from tenancy.problems import (
    Problem,
    conflict,
    not_found,
    problem_responses,
    process_behind,
)
from tenancy.runtime import Runtime


def require_admin(request: Request) -> Runtime:
    runtime: Runtime = request.state.runtime
    expected = runtime.settings.admin_token
    if expected is None:
        raise Problem(
            401, "unauthorized", "The admin API is closed", "Set TENANTRY_ADMIN_TOKEN to open it."
        )
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if (
        scheme.lower() != "bearer"  # the scheme is case-insensitive (RFC 9110, 11.1)
        or not hmac.compare_digest(
            credentials.strip().encode(), expected.get_secret_value().encode()
        )
    ):
        raise Problem(
            401,
            "unauthorized",
            "Missing or invalid admin token",
            "Send Authorization: Bearer <TENANTRY_ADMIN_TOKEN>.",
        )
    return runtime


AdminRuntime = Annotated[Runtime, Depends(require_admin)]
_PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]+$"
"""No control character (a NUL would reach PostgreSQL, which cannot hold it): 422, not 500."""
SlugPath = Annotated[str, Path(max_length=64, pattern=_PRINTABLE, description="The tenant's slug")]
KeyIdPath = Annotated[
    str, Path(max_length=64, pattern=_PRINTABLE, description="The key's id (after `tnt_`)")
]


@asynccontextmanager
async def lifecycle_problems() -> AsyncIterator[None]:
    """Lifecycle refusals as problem+json: 404 unknown, 409 wrong state, taken or a schema that
    cannot be brought to head, 422 bad slug, 503 `process-behind` when this process's code is
    older than the deployed revisions or the tenant's (another, restarted process can do it)."""
    try:
        yield
    except (UnknownTenant, UnknownKey) as exc:
        raise Problem(404, "not-found", "Not found", str(exc)) from None
    except (TenantExists, TenantStateConflict, SchemaNotUpgradable, SchemaMissing) as exc:
        raise conflict(first_line(exc)) from None
    except ProcessBehind as exc:
        raise process_behind(str(exc)) from None
    except InvalidSlug as exc:
        raise Problem(422, "invalid-slug", "Invalid tenant slug", str(exc)) from None


class TenantCreate(StrictInput):
    slug: str = Field(
        max_length=40,
        examples=["acme-co"],
        json_schema_extra={  # documented here; validate_slug checks (422 invalid-slug)
            "pattern": f"^{SLUG_PATTERN}$",
            "not": {"enum": sorted(RESERVED_SLUGS)},
        },
    )
    display_name: str | None = Field(
        default=None,
        max_length=DISPLAY_NAME_MAX_LENGTH,
        pattern=DISPLAY_NAME_PATTERN,  # no control characters: the CLI's and import's rule too
        examples=["Acme Co"],
    )


class TenantCreated(Output):
    slug: str
    schema_name: str
    display_name: str
    key_id: str
    api_key: str = Field(description="Shown once; only its hash is stored")


class TenantOut(Output):
    slug: str
    display_name: str
    status: str = Field(examples=["active", "suspended", "archived"])
    schema_name: str = Field(description="Where its tables are now (its archive when archived)")
    revision: str | None
    created_at: datetime
    size_bytes: int

    @classmethod
    def of(cls, row: TenantSummary) -> "TenantOut":
        return cls(
            slug=row.slug,
            display_name=row.display_name,
            status=row.status,
            schema_name=row.schema,
            revision=row.revision,
            created_at=row.created_at,
            size_bytes=row.size_bytes,
        )


class KeyOut(Output):
    key_id: str
    active: bool
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(Output):
    slug: str
    key_id: str
    api_key: str = Field(description="Shown once; only its hash is stored")


router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    responses=problem_responses(400, 401, 404, 409, 413, 422, 431, 503),
)


@router.post(
    "/tenants",
    status_code=status.HTTP_201_CREATED,
    response_model=TenantCreated,
)
async def create_tenant_route(body: TenantCreate, runtime: AdminRuntime) -> TenantCreated:
    async with lifecycle_problems():
        created = await create_tenant(
            runtime.owner_engine, tenant_blueprint(runtime.tracks), body.slug, body.display_name
        )
    await runtime.directory.reload(created.slug)  # usable at once on this process
    return TenantCreated(
        slug=created.slug,
        schema_name=created.schema,
        display_name=created.display_name,
        key_id=created.key_id,
        api_key=created.api_key,
    )


@router.get("/tenants", response_model=list[TenantOut])
async def list_tenants_route(runtime: AdminRuntime) -> list[TenantOut]:
    async with runtime.owner_engine.connect() as conn:
        return [TenantOut.of(row) for row in await tenant_inventory(conn)]


@router.get("/tenants/{slug}", response_model=TenantOut)
async def get_tenant_route(slug: SlugPath, runtime: AdminRuntime) -> TenantOut:
    return await _summary(runtime, slug)


@router.post("/tenants/{slug}/suspend", response_model=TenantOut)
async def suspend_route(slug: SlugPath, runtime: AdminRuntime) -> TenantOut:
    """Every API process answers the tenant's requests with 403 from now on."""
    async with lifecycle_problems():
        await suspend_tenant(runtime.owner_engine, slug)
    await runtime.directory.reload(slug)
    return await _summary(runtime, slug)


@router.post("/tenants/{slug}/resume", response_model=TenantOut)
async def resume_route(slug: SlugPath, runtime: AdminRuntime) -> TenantOut:
    async with lifecycle_problems():
        await resume_tenant(runtime.owner_engine, slug)
    await runtime.directory.reload(slug)
    return await _summary(runtime, slug)


@router.delete("/tenants/{slug}", response_model=TenantOut)
async def archive_route(slug: SlugPath, runtime: AdminRuntime) -> TenantOut:
    """Archive: the schema leaves the tenant namespace, keys are revoked, requests get 401.
    Nothing is deleted; POST .../restore undoes it."""
    async with lifecycle_problems():
        await archive_tenant(runtime.owner_engine, slug)
    await runtime.directory.reload(slug)
    return await _summary(runtime, slug)


@router.post("/tenants/{slug}/restore", response_model=TenantOut)
async def restore_route(slug: SlugPath, runtime: AdminRuntime) -> TenantOut:
    async with lifecycle_problems():
        await restore_tenant(runtime.owner_engine, runtime.tracks, slug)
    await runtime.directory.reload(slug)
    return await _summary(runtime, slug)


@router.get("/tenants/{slug}/keys", response_model=list[KeyOut])
async def list_keys_route(slug: SlugPath, runtime: AdminRuntime) -> list[KeyOut]:
    async with lifecycle_problems(), runtime.owner_engine.connect() as conn:
        rows = await list_keys(conn, slug)
    return [KeyOut.model_validate(row) for row in rows]


@router.post("/tenants/{slug}/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
async def create_key_route(slug: SlugPath, runtime: AdminRuntime) -> KeyCreated:
    """Another active key, so that clients can rotate; shown once."""
    async with lifecycle_problems():
        key = await create_key(runtime.owner_engine, slug)
    await runtime.directory.reload(slug)
    return KeyCreated(slug=slug, key_id=key.key_id, api_key=key.token)


@router.delete("/tenants/{slug}/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key_route(slug: SlugPath, key_id: KeyIdPath, runtime: AdminRuntime) -> Response:
    async with lifecycle_problems():
        await revoke_key(runtime.owner_engine, key_id, slug=slug)
    await runtime.directory.reload(slug)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _summary(runtime: Runtime, slug: str) -> TenantOut:
    async with runtime.owner_engine.connect() as conn:
        rows = await tenant_inventory(conn, slug)
    if not rows:
        raise not_found("Tenant")
    return TenantOut.of(rows[0])
