"""Validation messages that say what to do: a blank text, a body without its JSON media type, an
admin API without a token."""

import httpx

from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.testing.servers import client


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
