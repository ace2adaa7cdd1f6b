"""/docs and /redoc render the API's operations in real headless Chromium with no network.

The negative control serves FastAPI's default pages (assets from a CDN) under the same browser
flags: they render nothing, which proves the network really is blocked in these tests.
"""

import re

import pytest
from fastapi import FastAPI

from service import todos
from service.docs_ui import ASSETS_URL
from tenancy.testing.servers import client
from tests.support.browser import rendered_dom
from tests.support.common import running_server

OPERATION_PATHS = re.compile(r'data-path="(/[^"]*)"')


async def test_swagger_ui_renders_every_operation_offline(api: str) -> None:
    async with client(api) as http:
        spec = (await http.get("/openapi.json")).json()
        page = (await http.get("/docs")).text
    assert ASSETS_URL in page and "cdn" not in page.lower()

    dom = await rendered_dom(f"{api}/docs")

    rendered = set(OPERATION_PATHS.findall(dom))
    assert rendered == set(spec["paths"]), dom[-3000:]
    assert 'id="operations-todos-create_todo_todos_post"' in dom or "/todos" in rendered


async def test_redoc_renders_the_operations_offline(api: str) -> None:
    dom = await rendered_dom(f"{api}/redoc")
    assert "/todos/{todo_id}" in dom, dom[-3000:]
    assert "Authorization" in dom or "TenantKey" in dom, dom[-3000:]


@pytest.mark.negative_control
async def test_the_cdn_pages_render_nothing_under_the_same_flags() -> None:
    app = FastAPI()
    app.include_router(todos.router)
    async with running_server(app) as base_url:
        dom = await rendered_dom(f"{base_url}/docs", budget_ms=5000)
    assert "cdn.jsdelivr.net" in dom  # FastAPI's own page, loading from a CDN
    assert not OPERATION_PATHS.findall(dom)
