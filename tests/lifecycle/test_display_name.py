"""One display-name rule for every way a tenant comes in (CLI, admin API, import): at most
DISPLAY_NAME_MAX_LENGTH characters and no control character; a refused name creates nothing."""

import json
import secrets

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.lifecycle.errors import InvalidDisplayName
from tenancy.lifecycle.onboarding import DISPLAY_NAME_MAX_LENGTH, checked_display_name
from tenancy.testing.servers import client
from tests.cli.test_cli import tenantry
from tests.support.common import row_counts, schema_names
from tests.support.project import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
REFUSED = {
    "too long": "x" * (DISPLAY_NAME_MAX_LENGTH + 1),
    "bidi override": "\u202eevil",
    "bidi isolate": "a\u2066b",
    "tab": "Acme\tCo",
    "newline": "Acme\nCo",
    "NUL": "Acme\x00Co",
    "DEL": "Acme\x7fCo",
    "C1 control": "Acme\x85Co",
}
ACCEPTED = ["Acme Co", "Société Générale ☕", "x" * DISPLAY_NAME_MAX_LENGTH]


@pytest.mark.parametrize("name", ACCEPTED)
def test_plain_names_up_to_the_limit_are_kept(name: str) -> None:
    assert checked_display_name(name, "acme") == name


def test_no_name_means_the_slug() -> None:
    assert checked_display_name(None, "acme") == checked_display_name("", "acme") == "acme"


@pytest.mark.parametrize(
    ("given", "kept"), [("  Foo  ", "Foo"), ("   ", "acme"), ("\u2028", "acme")]
)
def test_surrounding_whitespace_is_stripped_as_the_api_strips_it(given: str, kept: str) -> None:
    assert checked_display_name(given, "acme") == kept


@pytest.mark.parametrize("name", REFUSED.values(), ids=REFUSED.keys())
def test_the_rule_refuses_long_names_and_control_characters(name: str) -> None:
    with pytest.raises(InvalidDisplayName):
        checked_display_name(name, "acme")


@pytest.mark.parametrize("kind", ["too long", "tab", "newline"])
async def test_the_cli_refuses_in_one_line_and_creates_nothing(
    engine: AsyncEngine, new_slug: str, kind: str
) -> None:
    before = (await schema_names(engine), await row_counts(engine))
    result = tenantry("tenants", "create", new_slug, "--display-name", REFUSED[kind])
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "display name" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert (await schema_names(engine), await row_counts(engine)) == before


async def test_the_cli_keeps_a_name_at_the_limit(new_slug: str) -> None:
    result = tenantry("tenants", "create", new_slug, "--display-name", ACCEPTED[-1], "--json")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("kind", ["too long", "tab", "NUL", "C1 control"])
async def test_the_admin_api_refuses_the_same_names_with_422(
    api: str, engine: AsyncEngine, new_slug: str, kind: str
) -> None:
    before = await schema_names(engine)
    async with client(api) as http:
        response = await http.post(
            "/admin/tenants",
            json={"slug": new_slug, "display_name": REFUSED[kind]},
            headers=ADMIN,
        )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await schema_names(engine) == before


async def test_the_admin_api_accepts_what_the_cli_accepts(api: str, new_slug: str) -> None:
    async with client(api) as http:
        response = await http.post(
            "/admin/tenants", json={"slug": new_slug, "display_name": ACCEPTED[1]}, headers=ADMIN
        )
    assert response.status_code == 201, response.text
    assert response.json()["display_name"] == ACCEPTED[1]


@pytest.mark.parametrize(("given", "kept"), [("  Foo  ", "Foo"), ("   ", None)])
async def test_the_cli_and_the_api_store_the_same_name(
    api: str, given: str, kept: str | None
) -> None:
    async with client(api) as http:
        slugs = [f"dn-{secrets.token_hex(4)}" for _ in range(2)]
        by_cli = tenantry("tenants", "create", slugs[0], "--display-name", given, "--json")
        by_api = await http.post(
            "/admin/tenants", json={"slug": slugs[1], "display_name": given}, headers=ADMIN
        )
    assert by_cli.returncode == 0 and by_api.status_code == 201, (by_cli.stderr, by_api.text)
    assert json.loads(by_cli.stdout)["display_name"] == (kept or slugs[0])
    assert by_api.json()["display_name"] == (kept or slugs[1])


@pytest.mark.parametrize("path", ["/admin/tenants/a%00b", "/admin/tenants/a%01b/keys"])
async def test_a_control_character_in_an_admin_path_is_422_not_500(api: str, path: str) -> None:
    async with client(api) as http:
        response = await http.get(path, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
