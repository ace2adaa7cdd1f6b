"""The OpenAPI document tells a client how to authenticate as a tenant, its examples work, and
every error it documents is the problem+json the API really answers."""

import jsonschema
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.lifecycle.status import set_status
from tenancy.problems import PROBLEM_MEDIA_TYPE
from tenancy.settings import TenancySettings
from tenancy.testing.servers import client

TENANT_PATHS = ("/todos", "/users", "/songs")


async def openapi_of(api: str) -> dict:
    async with client(api) as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_tenant_routes_need_the_configured_header_and_the_bearer_key(
    settings: TenancySettings,
) -> None:
    spec = create_app(settings.model_copy(update={"tenant_header": "X-Org"})).openapi()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["TenantHeader"] == {**schemes["TenantHeader"], "type": "apiKey", "in": "header"}
    assert schemes["TenantHeader"]["name"] == "X-Org"
    assert (schemes["TenantKey"]["type"], schemes["TenantKey"]["scheme"]) == ("http", "bearer")
    seen = set()
    for path, method, operation in operations(spec):
        if path.startswith(TENANT_PATHS):
            assert operation["security"] == [{"TenantHeader": [], "TenantKey": []}], path
            assert {"400", "401", "403", "429"} <= set(operation["responses"])
            seen.add(path.split("/")[1])
        elif path.startswith("/admin/"):
            assert operation["security"] == [{"AdminToken": []}]
        else:
            assert "security" not in operation, (method, path)
    assert seen == {"todos", "users", "songs"}
    assert {tag["name"] for tag in spec["tags"]} >= {"todos", "users", "songs", "admin", "health"}


async def test_every_documented_error_is_problem_json(api: str) -> None:
    spec = await openapi_of(api)
    errors = 0
    for _path, _method, operation in operations(spec):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                errors += 1
                assert set(response["content"]) == {PROBLEM_MEDIA_TYPE}
                schema = response["content"][PROBLEM_MEDIA_TYPE]["schema"]
                assert schema == {"$ref": "#/components/schemas/ProblemDetail"}
    assert errors > 30
    assert "HTTPValidationError" not in spec["components"]["schemas"]


async def test_real_errors_are_the_documented_problems(
    api: str, engine: AsyncEngine, tenant: CreatedTenant, other_tenant: CreatedTenant
) -> None:
    spec = await openapi_of(api)
    problem = {"$ref": "#/components/schemas/ProblemDetail", "components": spec["components"]}
    await set_status(engine, other_tenant.slug, "suspended")
    async with client(api, tenant.slug, tenant.api_key) as http:
        await http.post("/users", json={"email": "dup@example.com", "name": "One"})
        answers = [
            ("/todos", "get", await http.get("/todos", headers={"X-Tenant-ID": "Bad Slug"})),
            ("/todos", "get", await http.get("/todos", params={"cursor": "x"})),
            ("/todos", "get", await http.get("/todos", headers={"Authorization": "Bearer no"})),
            ("/todos/{todo_id}", "get", await http.get("/todos/999999")),
            ("/users", "post", await http.post("/users", json={"email": "dup@example.com"})),
            (
                "/users",
                "post",
                await http.post("/users", json={"email": "dup@example.com", "name": "Two"}),
            ),
        ]
    async with client(api, other_tenant.slug, other_tenant.api_key) as http:
        for _ in range(50):  # the suspension reaches the API through NOTIFY
            suspended = await http.get("/songs")
            if suspended.status_code == 403:
                break
        answers.append(("/songs", "get", suspended))
    statuses = set()
    for path, method, response in answers:
        documented = spec["paths"][path][method]["responses"]
        assert str(response.status_code) in documented, (path, method, response.status_code)
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
        jsonschema.validate(response.json(), problem)
        statuses.add(response.status_code)
    assert statuses == {400, 401, 403, 404, 409, 422}


async def test_a_client_following_the_security_schemes_and_examples_gets_in(
    api: str, tenant: CreatedTenant
) -> None:
    spec = await openapi_of(api)
    schemes = spec["components"]["securitySchemes"]
    credentials = {"apiKey": tenant.slug, "http": tenant.api_key}
    for path in TENANT_PATHS:
        operation = spec["paths"][path]["post"]
        headers = {}
        for name in operation["security"][0]:
            scheme = schemes[name]
            if scheme["type"] == "apiKey":
                headers[scheme["name"]] = credentials["apiKey"]
            else:
                headers["Authorization"] = f"Bearer {credentials['http']}"
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        model = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        body = {name: field["examples"][0] for name, field in model["properties"].items()}
        async with client(api) as http:
            response = await http.post(path, json=body, headers=headers)
        assert response.status_code == 201, (path, response.text)


async def test_the_docs_page_keeps_the_authorization_between_reloads(api: str) -> None:
    async with client(api) as http:
        response = await http.get("/docs")
    assert response.status_code == 200
    assert "/openapi.json" in response.text
    assert '"persistAuthorization": true' in response.text


WHITESPACE_LIKE = [chr(c) for c in range(0x3001) if chr(c).isspace()] + ["\ufeff", "\u200b"]


async def test_the_documented_text_pattern_agrees_with_the_app_on_whitespace(
    api: str, tenant: CreatedTenant
) -> None:
    """A song named with one whitespace-like character: the app refuses it (422) exactly when
    the OpenAPI document's pattern says it is invalid (U+0085 used to pass the pattern only)."""
    spec = await openapi_of(api)
    song = spec["components"]["schemas"]["SongIn"]
    async with client(api, tenant.slug, tenant.api_key) as http:
        for char in WHITESPACE_LIKE:
            body = {"name": char, "artist": "x"}
            documented = jsonschema.Draft202012Validator(song).is_valid(body)
            answered = (await http.post("/songs", json=body)).status_code
            assert answered == (201 if documented else 422), (hex(ord(char)), answered)
