from tenancy.testing.servers import client


async def test_healthz_answers_without_a_tenant(api: str) -> None:
    async with client(api) as http:
        response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_the_shared_schema_at_head(api: str, tracks) -> None:
    async with client(api) as http:
        response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json()["shared_revision"] == tracks.shared_head
