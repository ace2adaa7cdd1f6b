"""The todos resource: CRUD, soft delete, keyset pagination, validation."""

from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.testing.servers import client


async def test_todo_lifecycle(api: str, tenant: CreatedTenant) -> None:
    async with client(api, tenant.slug, tenant.api_key) as http:
        created = await http.post("/todos", json={"content": "write tests"})
        assert created.status_code == 201
        todo = created.json()
        assert todo["content"] == "write tests"

        updated = await http.put(f"/todos/{todo['id']}", json={"content": "write more tests"})
        assert updated.status_code == 200
        assert updated.json()["content"] == "write more tests"
        assert updated.json()["updated_at"] >= todo["updated_at"]

        assert (await http.delete(f"/todos/{todo['id']}")).status_code == 204
        gone = await http.get(f"/todos/{todo['id']}")
        assert gone.status_code == 404
        assert gone.headers["content-type"] == "application/problem+json"
        assert gone.json()["type"].endswith("/not-found")
        assert (await http.get("/todos")).json()["items"] == []
        assert (await http.delete(f"/todos/{todo['id']}")).status_code == 404


async def test_list_is_newest_first_and_pages_with_a_cursor(
    api: str, tenant: CreatedTenant
) -> None:
    async with client(api, tenant.slug, tenant.api_key) as http:
        for n in range(7):
            await http.post("/todos", json={"content": f"todo {n}"})
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
            page = (await http.get("/todos", params=params)).json()
            seen += [t["content"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert seen == [f"todo {n}" for n in reversed(range(7))]


async def test_bad_input_is_a_problem_not_a_crash(api: str, tenant: CreatedTenant) -> None:
    async with client(api, tenant.slug, tenant.api_key) as http:
        cases = [
            await http.post("/todos", json={}),
            await http.post("/todos", json={"content": ""}),
            await http.post("/todos", json={"content": "x" * 2001}),
            await http.post("/todos", json={"content": "ok", "owner": "someone else"}),
            await http.get("/todos", params={"limit": 101}),
            await http.get("/todos/0"),
            await http.get(f"/todos/{2**63}"),
            await http.post("/users", json={"email": "not-an-email", "name": "x"}),
        ]
        for response in cases:
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"].endswith("/validation-error")
        for cursor in ["1; DROP TABLE todos", "\u00b2", "-1", "0", str(2**63), "9" * 40]:
            bad_cursor = await http.get("/todos", params={"cursor": cursor})
            assert bad_cursor.status_code == 400, cursor
            assert bad_cursor.json()["type"].endswith("/invalid-cursor")


async def test_duplicate_email_is_a_conflict(api: str, tenant: CreatedTenant) -> None:
    async with client(api, tenant.slug, tenant.api_key) as http:
        user = {"email": "dup@example.com", "name": "First"}
        assert (await http.post("/users", json=user)).status_code == 201
        again = await http.post("/users", json={**user, "email": "DUP@example.com"})
        assert again.status_code == 409
        assert again.json()["type"].endswith("/conflict")
        assert len((await http.get("/users")).json()["items"]) == 1
