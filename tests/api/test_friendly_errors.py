"""Validation messages that say what to do: a blank text, a body without its JSON media type, an
admin API without a token."""

import httpx
from fastapi import HTTPException

from service.app import create_app
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.settings import TenancySettings
from tenancy.testing.servers import client
from tests.support.common import running_server


async def test_a_blank_text_and_a_body_without_content_type_say_why(
    api: str, tenant: CreatedTenant
) -> None:
    async with client(api, tenant.slug, tenant.api_key) as http:
        blank = await http.post("/songs", json={"name": "   ", "artist": "x"})
        untyped = await http.post(
            "/songs", content=b'{"name": "a", "artist": "b"}', headers={"content-type": ""}
        )
    assert blank.status_code == 422
    assert blank.json()["errors"][0]["msg"].startswith("Must contain a non-space character")
    assert untyped.status_code == 422, untyped.text
    assert "Content-Type: application/json" in untyped.json()["errors"][0]["msg"], untyped.text


async def test_a_wrong_admin_token_is_worded_for_admins(api: str) -> None:
    """Not as a tenant's missing API key."""
    async with httpx.AsyncClient(base_url=api) as http:
        wrong = await http.get("/admin/tenants", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["title"] == "Missing or invalid admin token"


async def test_any_other_http_error_is_a_problem_of_type_http_error(
    settings: TenancySettings,
) -> None:
    """An HTTPException with a status the app has no type of its own for (here 418, from a
    route added for the test) keeps its status and detail as problem+json `http-error`; a 404
    of the framework's keeps its own type (the control: the mapping is not one type for all)."""
    app = create_app(settings)

    @app.get("/healthz/teapot", include_in_schema=False)
    async def teapot() -> None:
        raise HTTPException(418, "I'm a teapot")

    async with running_server(app) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        teapot_answer = await http.get("/healthz/teapot")
        missing = await http.get("/healthz/no-such-route")
    assert teapot_answer.status_code == 418
    assert teapot_answer.headers["content-type"] == "application/problem+json"
    assert teapot_answer.json()["type"].endswith("/http-error")
    assert teapot_answer.json()["title"] == "I'm a teapot"
    assert missing.status_code == 404 and missing.json()["type"].endswith("/not-found")
