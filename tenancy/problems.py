"""RFC 9457 problem+json errors with stable `type` URIs."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
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


def invalid_tenant_header(header: str, why: str = "is missing") -> Problem:
    """400 `invalid-tenant-header`; `why` says what is wrong with it ("is missing", ...)."""
    return Problem(
        400,
        "invalid-tenant-header",
        "Missing or malformed tenant header",
        f"The {header} header {why}: send the tenant's slug there (2-40 lower-case letters, "
        "digits and '-', starting with a letter).",
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


def tenant_unavailable(
    detail: str = "Its schema is missing or being moved; retry later.",
) -> Problem:
    """The tenant is admitted but its schema (or a table the code needs) is not there: dropped
    by hand, mid-move, or at an older revision."""
    return Problem(503, "tenant-unavailable", "This tenant's data is not available", detail)


def process_behind(detail: str) -> Problem:
    """This API process's code is older than the deployed revisions (or the tenant's): it
    refuses to build a tenant it would stamp wrongly; a restarted process can."""
    return Problem(503, "process-behind", "This process is behind the deployed migrations", detail)


def shutting_down() -> Problem:
    """A request still running when `tenantry serve` reached TENANTRY_SHUTDOWN_TIMEOUT after
    SIGTERM, cancelled before its response started (tenancy.middleware.observer)."""
    return Problem(
        503,
        "shutting-down",
        "The server shut down before this request finished",
        "It was cancelled at the shutdown timeout and its transaction rolled back, unless the "
        "cancel caught its COMMIT in flight: check before retrying a request that is not "
        "idempotent.",
    )


def rate_limited(retry_after: str) -> Problem:
    return Problem(
        429,
        "rate-limited",
        "Too many requests for this tenant",
        f"Retry after {retry_after} seconds.",
    )


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(examples=[["body", "content"]])
    msg: str = Field(examples=["Field required"])
    type: str = Field(examples=["missing"])


class ProblemDetail(BaseModel):
    """The body of every error (RFC 9457), served as application/problem+json."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        description="Stable URI of the kind of problem; clients branch on it",
        examples=[PROBLEM_BASE + "not-found"],
    )
    title: str = Field(description="Short summary, the same for every problem of this type")
    status: int = Field(description="The HTTP status code", examples=[404])
    detail: str | None = Field(default=None, description="What went wrong in this occurrence")
    errors: list[ValidationIssue] | None = Field(
        default=None, description="For `validation-error`: each invalid input and why"
    )


PROBLEM_STATUSES: dict[int, str] = {
    400: "Malformed tenant header or parameter (`invalid-tenant-header`, `invalid-cursor`), or "
    "an identity header (tenant header, `Authorization`) sent more than once (`duplicate-header`)",
    401: "Missing or invalid credentials (`unauthorized`)",
    403: "The tenant is suspended (`tenant-suspended`)",
    404: "No such resource (`not-found`)",
    405: "The path does not serve this method (`method-not-allowed`); `Allow` lists those it does",
    409: "Conflicts with existing data (`conflict`)",
    413: "Request body too large (`body-too-large`)",
    422: "Invalid input (`validation-error`, with `errors`)",
    431: "More header lines than the server accepts (`too-many-headers`)",
    429: "Over the tenant's rate limit (`rate-limited`); retry after `Retry-After` seconds",
    500: "Unexpected server error (`internal-error`)",
    503: "Not ready (`not-ready`), no database connection free in time (`busy`, with "
    "Retry-After), the tenant's schema is missing or being moved (`tenant-unavailable`), "
    "this process is older than the deployed migrations (`process-behind`), or the request was "
    "cut off by the server's shutdown (`shutting-down`, with Retry-After)",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status documented with the ProblemDetail schema (the
    OpenAPI hook in tenancy.openapi serves it as application/problem+json)."""
    return {
        status: {"model": ProblemDetail, "description": PROBLEM_STATUSES.get(status, "Error")}
        for status in statuses
    }
