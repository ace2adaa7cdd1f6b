"""One rule for every list of the API: newest first, `limit` a page, and the page that ends the
list carries no cursor (never a cursor to an empty page)."""

from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.testing.servers import client

BODIES = {
    "/todos": lambda n: {"content": f"item {n}"},
    "/users": lambda n: {"email": f"user{n}@example.com", "name": f"item {n}"},
    "/songs": lambda n: {"name": f"item {n}", "artist": "someone"},
}
LABEL = {"/todos": "content", "/users": "name", "/songs": "name"}


async def test_every_list_is_newest_first_and_its_full_last_page_has_no_cursor(
    api: str, tenant: CreatedTenant
) -> None:
    async with client(api, tenant.slug, tenant.api_key) as http:
        for path, body in BODIES.items():
            for n in range(6):
                assert (await http.post(path, json=body(n))).status_code == 201
            pages, cursor = [], None
            while True:
                params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
                page = (await http.get(path, params=params)).json()
                pages.append([item[LABEL[path]] for item in page["items"]])
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert pages == [["item 5", "item 4", "item 3"], ["item 2", "item 1", "item 0"]], path
            everything = (await http.get(path, params={"limit": 6})).json()
            assert everything["next_cursor"] is None, path


async def test_without_a_limit_every_list_gives_pages_of_20(
    api: str, tenant: CreatedTenant
) -> None:
    """api.md: `limit` defaults to 20. 21 rows: the first page holds 20 and a cursor, the next
    the one left."""
    async with client(api, tenant.slug, tenant.api_key) as http:
        for path, body in BODIES.items():
            for n in range(21):
                assert (await http.post(path, json=body(f"d{n}"))).status_code == 201
            first = (await http.get(path)).json()
            rest = (await http.get(path, params={"cursor": first["next_cursor"]})).json()
            assert len(first["items"]) == 20 and first["next_cursor"] is not None, path
            assert [item[LABEL[path]] for item in rest["items"]] == ["item d0"], path
