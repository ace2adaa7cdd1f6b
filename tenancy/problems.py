"""RFC 9457 problem+json errors with stable `type` URIs."""

from typing import Any

from starlette.responses import JSONResponse

PROBLEM_BASE = "https://tenantry.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error the client caused or must know about; rendered as problem+json."""

    def __init__(self, status: int, kind: str, title: str, detail: str | None = None) -> None:
        super().__init__(detail or title)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.kind

    def body(self, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        body.update(extra)
        return body

    def response(self, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
        return JSONResponse(
            self.body(**extra),
            status_code=self.status,
            media_type=PROBLEM_MEDIA_TYPE,
            headers=headers,
        )


def invalid_tenant_header(header: str) -> Problem:
    return Problem(
        400,
        "invalid-tenant-header",
        "Missing or malformed tenant header",
        f"Send the tenant's slug in the {header} header.",
    )


def unauthorized() -> Problem:
    """The same answer whether or not the tenant exists, so slugs cannot be enumerated."""
    return Problem(401, "unauthorized", "Missing or invalid API key for this tenant")


def tenant_suspended() -> Problem:
    return Problem(403, "tenant-suspended", "This tenant is suspended")


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", f"{what} not found")


def conflict(detail: str) -> Problem:
    return Problem(409, "conflict", "Conflict", detail)
