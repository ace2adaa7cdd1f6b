"""OpenAPI for a schema-per-tenant API: how a tenant authenticates, and problem+json errors.

Post-processing of the generated document (no per-request cost): tenant routes get the two
security schemes a client needs (the tenant header and the bearer key, which the Swagger UI's
Authorize button fills in), and every error is documented as application/problem+json.
"""

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI

from tenancy.problems import PROBLEM_MEDIA_TYPE, PROBLEM_STATUSES, ProblemDetail

TENANT_HEADER_SCHEME = "TenantHeader"
TENANT_KEY_SCHEME = "TenantKey"
TENANT_PROBLEMS = (400, 401, 403, 429, 431)
"""What the header guard, the tenant middleware and the rate limit may answer on any tenant
route."""

PROBLEM_REF = "#/components/schemas/ProblemDetail"
_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")

OpenAPI = dict[str, Any]
OpenAPIStep = Callable[[OpenAPI], None]


def postprocess_openapi(app: FastAPI, *steps: OpenAPIStep) -> None:
    """Run steps once over the document FastAPI generates, before it is cached and served."""
    generate = app.openapi

    def openapi() -> OpenAPI:
        if app.openapi_schema is None:
            schema = generate()
            for step in steps:
                step(schema)
        return app.openapi_schema

    app.openapi = openapi


def operations(schema: OpenAPI) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method in _HTTP_METHODS:
                yield path, operation


def security_schemes(schema: OpenAPI) -> dict[str, Any]:
    return schema.setdefault("components", {}).setdefault("securitySchemes", {})


def tenant_security(header: str, public_prefixes: tuple[str, ...]) -> OpenAPIStep:
    """Tenant routes (all but public_prefixes) need the tenant header AND the bearer key."""

    def step(schema: OpenAPI) -> None:
        security_schemes(schema).update(
            {
                TENANT_HEADER_SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": header,
                    "description": "Your tenant's slug, e.g. `demo`.",
                },
                TENANT_KEY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Your tenant's API key, `tnt_<key id>_<secret>`.",
                },
            }
        )
        for path, operation in operations(schema):
            if not path.startswith(public_prefixes):
                operation["security"] = [{TENANT_HEADER_SCHEME: [], TENANT_KEY_SCHEME: []}]
                responses = operation.setdefault("responses", {})
                for status in TENANT_PROBLEMS:
                    responses.setdefault(str(status), problem_response(status))

    return step


def problem_response(status: int) -> dict[str, Any]:
    return {
        "description": PROBLEM_STATUSES.get(status, "Error"),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
    }


def problems_as_problem_json(schema: OpenAPI) -> None:
    """Errors declared with ProblemDetail, and FastAPI's own 422, as application/problem+json."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    generated = ProblemDetail.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in generated.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault("ProblemDetail", generated)
    for _path, operation in operations(schema):
        for status, response in operation.get("responses", {}).items():
            content = response.get("content", {})
            if status == "422":  # FastAPI's HTTPValidationError; the app answers a problem
                response.update(problem_response(422))
            elif content.get("application/json", {}).get("schema") == {"$ref": PROBLEM_REF}:
                response["content"] = problem_response(int(status))["content"]
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
