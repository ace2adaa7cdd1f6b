"""An app served by real uvicorn in the caller's event loop, on a free loopback port, and an HTTP
client for it that speaks as a tenant."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.types import ASGIApp


@asynccontextmanager
async def running_server(app: ASGIApp) -> AsyncIterator[str]:
    """Serve app with uvicorn on a free loopback port; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # the caller (a test runner) owns the signals
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def tenant_headers(slug: str, key: str) -> dict[str, str]:
    return {"X-Tenant-ID": slug, "Authorization": f"Bearer {key}"}


def client(base_url: str, slug: str | None = None, key: str | None = None) -> httpx.AsyncClient:
    headers = tenant_headers(slug, key) if slug and key else {}
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30)
