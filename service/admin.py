"""Admin routes, guarded by TENANTRY_ADMIN_TOKEN (refused outright when it is unset)."""

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from pydantic import Field

from service.schemas import Output, StrictInput, problem_responses
from tenancy.naming import RESERVED_SLUGS, SLUG_PATTERN, InvalidSlug
from tenancy.problems import Problem, conflict, unauthorized
from tenancy.provisioning import TenantExists, create_tenant
from tenancy.runtime import Tenancy


def require_admin(request: Request) -> Tenancy:
    runtime: Tenancy = request.state.tenancy
    expected = runtime.settings.admin_token
    presented = request.headers.get("authorization", "")
    if expected is None or not hmac.compare_digest(
        presented.encode(), f"Bearer {expected.get_secret_value()}".encode()
    ):
        raise unauthorized()
    return runtime


AdminRuntime = Annotated[Tenancy, Depends(require_admin)]


class TenantCreate(StrictInput):
    slug: str = Field(
        max_length=40,
        examples=["acme-co"],
        json_schema_extra={  # documented here; validate_slug checks (422 invalid-slug)
            "pattern": f"^{SLUG_PATTERN}$",
            "not": {"enum": sorted(RESERVED_SLUGS)},
        },
    )
    display_name: str | None = Field(default=None, max_length=200)


class TenantCreated(Output):
    slug: str
    schema_name: str
    display_name: str
    key_id: str
    api_key: str = Field(description="Shown once; only its hash is stored")


router = APIRouter(
    prefix="/admin", tags=["admin"], responses=problem_responses(400, 401, 409, 413, 422)
)


@router.post("/tenants", status_code=status.HTTP_201_CREATED, response_model=TenantCreated)
async def create_tenant_route(body: TenantCreate, runtime: AdminRuntime) -> TenantCreated:
    try:
        created = await create_tenant(
            runtime.owner_engine, runtime.tracks, body.slug, body.display_name
        )
    except InvalidSlug as exc:
        raise Problem(422, "invalid-slug", "Invalid tenant slug", str(exc)) from None
    except TenantExists as exc:
        raise conflict(str(exc)) from None
    return TenantCreated(
        slug=created.slug,
        schema_name=created.schema,
        display_name=created.display_name,
        key_id=created.key_id,
        api_key=created.api_key,
    )
