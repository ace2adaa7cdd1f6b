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


async def test_probes_may_send_head(api: str) -> None:
    """Uptime monitors and load balancers often probe with HEAD: the same status, no body."""
    async with client(api) as http:
        for path in ("/healthz", "/readyz"):
            get, head = await http.get(path), await http.head(path)
            assert (head.status_code, head.content) == (get.status_code, b""), path
            assert head.headers["content-type"] == get.headers["content-type"]
