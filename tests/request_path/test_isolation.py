"""Two tenants whose rows have identical ids never see or touch each other's rows."""

from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.testing.servers import client


async def _seed(api: str, tenant: CreatedTenant, label: str) -> None:
    async with client(api, tenant.slug, tenant.api_key) as http:
        for n in (1, 2):
            assert (
                await http.post("/todos", json={"content": f"{label} todo {n}"})
            ).status_code == 201
            user = {"email": f"{label}{n}@example.com", "name": f"{label} {n}"}
            assert (await http.post("/users", json=user)).status_code == 201
            song = {"name": f"{label} song {n}", "artist": label}
            assert (await http.post("/songs", json=song)).status_code == 201


async def test_identical_ids_stay_within_their_tenant_on_every_route(
    api: str, tenant: CreatedTenant, other_tenant: CreatedTenant
) -> None:
    await _seed(api, tenant, "alpha")
    await _seed(api, other_tenant, "beta")

    for who, label in ((tenant, "alpha"), (other_tenant, "beta")):
        async with client(api, who.slug, who.api_key) as http:
            todo = (await http.get("/todos/1")).json()
            assert todo == {**todo, "id": 1, "content": f"{label} todo 1"}
            todos = (await http.get("/todos")).json()["items"]
            assert [t["content"] for t in todos] == [f"{label} todo 2", f"{label} todo 1"]
            users = (await http.get("/users")).json()["items"]
            assert [(u["id"], u["email"]) for u in users] == [  # newest first, as every list
                (2, f"{label}2@example.com"),
                (1, f"{label}1@example.com"),
            ]
            songs = (await http.get("/songs")).json()["items"]
            assert {s["artist"] for s in songs} == {label}


async def test_writes_to_one_tenant_leave_the_other_untouched(
    api: str, tenant: CreatedTenant, other_tenant: CreatedTenant
) -> None:
    await _seed(api, tenant, "alpha")
    await _seed(api, other_tenant, "beta")

    async with client(api, tenant.slug, tenant.api_key) as alpha:
        assert (await alpha.put("/todos/1", json={"content": "changed"})).status_code == 200
        assert (await alpha.delete("/todos/2")).status_code == 204
        assert (await alpha.get("/todos/2")).status_code == 404
        same_email = {"email": "beta1@example.com", "name": "not a clash"}
        assert (await alpha.post("/users", json=same_email)).status_code == 201

    async with client(api, other_tenant.slug, other_tenant.api_key) as beta:
        assert (await beta.get("/todos/1")).json()["content"] == "beta todo 1"
        assert (await beta.get("/todos/2")).json()["content"] == "beta todo 2"
        assert len((await beta.get("/users")).json()["items"]) == 2
