"""One JSON line per request, with the route template and tenant, and never a key or a body;
a DBA sees which tenant and request a running query belongs to."""

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from fastapi import APIRouter
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.middleware.observer import RequestRecord
from tenancy.observability.access_log import AccessLog
from tenancy.observability.log_format import JsonFormatter, TextFormatter, configure_logging
from tenancy.settings import TenancySettings
from tenancy.testing.servers import client
from tests.support.common import request_waiting_on_a_row_lock, running_server

SECRET_CONTENT = "body-that-must-not-be-logged-7f3a"


@contextmanager
def captured_log() -> Iterator[io.StringIO]:
    """Everything logged at INFO and above, formatted as the service formats it in production."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)


def access_lines(buffer: io.StringIO) -> dict[str, dict]:
    """Access-log entries by request id; every line of the log must be one JSON object."""
    entries = [json.loads(line) for line in buffer.getvalue().splitlines()]
    return {e["request_id"]: e for e in entries if e["logger"] == "tenantry.access"}


async def until_logged(
    buffer: io.StringIO, request_ids: Iterable[str] = (), at_least: int = 0
) -> dict[str, dict]:
    """access_lines once these requests' lines (and at least `at_least` lines) are written:
    lines are written in batches, up to TENANTRY_ACCESS_LOG_FLUSH_SECONDS after their request
    ended, so a test reads them within its captured_log block once they are there."""
    wanted = set(request_ids)
    async with asyncio.timeout(10):  # a hang guard, not a clock
        while True:
            lines = access_lines(buffer)
            if wanted <= set(lines) and len(lines) >= at_least:
                return lines
            await asyncio.sleep(0.01)


async def test_each_request_is_one_json_line_with_route_template_status_and_tenant(
    api: str, tenant: CreatedTenant
) -> None:
    with captured_log() as log:
        async with client(api, tenant.slug, tenant.api_key) as http:
            created = await http.post("/todos", json={"content": SECRET_CONTENT})
            todo_id = created.json()["id"]
            fetched = await http.get(f"/todos/{todo_id}", headers={"X-Request-ID": "trace-42.a"})
            missing = await http.get("/todos/999999")
            refused = await http.get(f"/todos/{todo_id}", headers={"Authorization": "Bearer no"})
            unknown = await http.get("/no/such/path")
            health = await http.get("/healthz")
            docs = await http.get("/docs")
        responses = (created, fetched, missing, refused, unknown, health, docs)
        entries = await until_logged(log, (r.headers["X-Request-ID"] for r in responses))

    assert fetched.headers["X-Request-ID"] == "trace-42.a"
    expected = [
        (created, "POST", "/todos", 201, tenant.slug),
        (fetched, "GET", "/todos/{todo_id}", 200, tenant.slug),
        (missing, "GET", "/todos/{todo_id}", 404, tenant.slug),
        (refused, "GET", "/todos/{todo_id}", 401, None),
        (unknown, "GET", "<unmatched>", 404, tenant.slug),
        (health, "GET", "/healthz", 200, None),
        (docs, "GET", "/docs", 200, None),
    ]
    for response, method, route, status, slug in expected:
        entry = entries[response.headers["X-Request-ID"]]
        assert (entry["method"], entry["route"], entry["status"]) == (method, route, status)
        assert entry["tenant"] == slug
        assert entry["level"] == "info"
        assert entry["duration_ms"] >= 0
    assert len(set(entries)) >= len(expected)  # every generated request id is distinct


async def test_no_key_no_token_and_no_body_reaches_the_log(
    api: str, tenant: CreatedTenant, other_tenant: CreatedTenant
) -> None:
    with captured_log() as log:
        async with client(api, tenant.slug, tenant.api_key) as http:
            sent = [
                await http.post("/todos", json={"content": SECRET_CONTENT}),
                await http.post(
                    "/users", json={"email": "secret@example.com", "name": SECRET_CONTENT}
                ),
                await http.post(
                    "/users", json={"email": "secret@example.com", "name": SECRET_CONTENT}
                ),
                await http.put("/todos/1", json={"content": SECRET_CONTENT, "extra": True}),
                await http.get(
                    "/todos", headers={"Authorization": f"Bearer {other_tenant.api_key}"}
                ),
            ]
        async with client(api) as http:
            sent.append(
                await http.post(
                    "/admin/tenants",
                    json={"slug": "Bad Slug", "display_name": SECRET_CONTENT},
                    headers={"Authorization": "Bearer wrong-admin-token-5e1c"},
                )
            )
        await until_logged(log, [response.headers["X-Request-ID"] for response in sent])
    text = log.getvalue()
    for secret in (
        tenant.api_key,
        other_tenant.api_key,
        SECRET_CONTENT,
        "secret@example.com",
        "wrong-admin-token-5e1c",
        "Bearer",
    ):
        assert secret not in text


async def test_an_unusable_request_id_is_replaced_by_a_generated_one(api: str) -> None:
    hostile = ["a b", 'x"}{"level":"error', "a" * 129, "é"]
    with captured_log() as log:
        async with client(api) as http:
            responses = [
                await http.get("/healthz", headers={"X-Request-ID": value.encode()})
                for value in hostile
            ]
        echoed = [r.headers["X-Request-ID"] for r in responses]
        await until_logged(log, echoed)
    for value, request_id in zip(hostile, echoed, strict=True):
        assert request_id != value
        assert len(request_id) == 16 and int(request_id, 16) >= 0
    assert set(echoed) <= set(access_lines(log))


boom = APIRouter()


@boom.get("/boom")
async def fail_unexpectedly() -> None:
    raise RuntimeError("an unexpected failure")


async def test_an_unhandled_error_is_logged_as_500_and_still_echoes_the_request_id(
    settings: TenancySettings, tenant: CreatedTenant
) -> None:
    app = create_app(settings)
    app.include_router(boom)
    with captured_log() as log:
        async with (
            running_server(app) as base_url,
            client(base_url, tenant.slug, tenant.api_key) as http,
        ):
            response = await http.get("/boom", headers={"X-Request-ID": "boom-1"})
            await until_logged(log, ["boom-1"])
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "boom-1"
    entry = access_lines(log)["boom-1"]
    assert (entry["route"], entry["status"], entry["level"]) == ("/boom", 500, "error")


def test_people_at_a_terminal_get_text_and_pipes_get_json() -> None:
    primary, secondary = os.openpty()
    read_end, write_end = os.pipe()
    with open(secondary, "w") as terminal, open(write_end, "w") as pipe:
        for stream, expected in ((terminal, TextFormatter), (pipe, JsonFormatter)):
            configure_logging(TenancySettings(log_format="auto"), stream)
            assert type(logging.getLogger().handlers[0].formatter) is expected
        configure_logging(TenancySettings(log_format="json"), terminal)
        assert type(logging.getLogger().handlers[0].formatter) is JsonFormatter
    os.close(primary)
    os.close(read_end)
    logging.getLogger().handlers.clear()


def test_text_lines_carry_the_same_fields_for_people() -> None:
    record = logging.LogRecord("tenantry.access", logging.INFO, "", 0, "request", (), None)
    record.fields = {"method": "GET", "route": "/todos/{todo_id}", "status": 200}
    line = TextFormatter().format(record)
    assert line.endswith(
        "INFO  tenantry.access request method=GET route=/todos/{todo_id} status=200"
    )
    assert json.loads(JsonFormatter().format(record))["route"] == "/todos/{todo_id}"


async def test_pg_stat_activity_names_the_tenant_and_request_of_a_running_query(
    api: str, engine: AsyncEngine, settings: TenancySettings, tenant: CreatedTenant
) -> None:
    prefix, request_id = settings.application_name + ":", {"X-Request-ID": "dba-7"}
    async with client(api, tenant.slug, tenant.api_key) as http:
        async with request_waiting_on_a_row_lock(
            http, engine, tenant.schema, prefix, request_id
        ) as (backend, update):
            pass  # the other session has looked while the query was running
        assert (await update).status_code == 200
    assert backend["application_name"] == f"{settings.application_name}:{tenant.slug}:dba-7"
    assert backend["query"].lstrip().upper().startswith("UPDATE TODOS")


@hypothesis_settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.floats(min_value=-1e9, max_value=4e9, allow_nan=False),
        st.integers(0, 4_000_000_000).map(lambda s: s + 0.9999996),  # rounds up to the next second
        st.integers(0, 4_000_000_000).map(lambda s: s + 0.0005),
    )
)
def test_json_timestamps_are_what_isoformat_writes(created: float) -> None:
    """The per-second cache of the timestamp's text changes nothing: every `ts` is what
    datetime.fromtimestamp(...).isoformat(timespec="milliseconds") writes, seconds rolling
    over included (one formatter across examples, so its cache is hit and missed)."""
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert _SHARED_FORMATTER.timestamp(created) == expected
    assert _SHARED_FORMATTER.timestamp(created) == expected  # a second time, from the cache


_SHARED_FORMATTER = JsonFormatter()


def request(request_id: str, status: int = 200, ended: float = 1_700_000_000.25) -> RequestRecord:
    return RequestRecord("GET", "/todos", status, 0.002, "acme", request_id, ended)


def written_ids(buffer: io.StringIO) -> list[str]:
    """Request ids of the access lines written so far, in the order written."""
    return [
        entry["request_id"]
        for entry in map(json.loads, buffer.getvalue().splitlines())
        if entry["logger"] == "tenantry.access"
    ]


async def test_lines_are_held_and_written_together_in_order_a_server_error_at_once() -> None:
    with captured_log() as log:
        access_log = AccessLog(flush_seconds=3600)
        access_log(request("held-1", ended=1_700_000_000.25))
        access_log(request("held-2", 404, ended=1_700_000_001.5))
        assert written_ids(log) == []  # held: the control that lines are batched at all
        access_log(request("failed", 500))
        assert written_ids(log) == ["held-1", "held-2", "failed"]
        access_log(request("later"))
        assert written_ids(log) == ["held-1", "held-2", "failed"]
        access_log.flush()
        assert written_ids(log) == ["held-1", "held-2", "failed", "later"]
    lines = access_lines(log)
    formatter = JsonFormatter()
    assert lines["held-1"]["ts"] == formatter.timestamp(1_700_000_000.25)  # the request's end
    assert lines["held-2"]["ts"] == formatter.timestamp(1_700_000_001.5)
    assert lines["failed"]["level"] == "error" and lines["held-2"]["status"] == 404


async def test_held_lines_are_written_later_without_a_flush() -> None:
    with captured_log() as log:
        access_log = AccessLog(flush_seconds=0.05)
        access_log(request("soon"))
        assert written_ids(log) == []
        await until_logged(log, ["soon"])


async def test_zero_seconds_or_a_full_batch_write_at_once() -> None:
    with captured_log() as log:
        AccessLog(flush_seconds=0)(request("now"))
        assert written_ids(log) == ["now"]
        batch = AccessLog(flush_seconds=3600, max_pending=3)
        batch(request("b1"))
        batch(request("b2"))
        assert written_ids(log) == ["now"]
        batch(request("b3"))
        assert written_ids(log) == ["now", "b1", "b2", "b3"]


async def test_the_app_writes_the_lines_it_holds_as_it_stops(
    settings: TenancySettings, tenant: CreatedTenant
) -> None:
    app = create_app(settings.model_copy(update={"access_log_flush_seconds": 3600}))
    with captured_log() as log:
        async with running_server(app) as base_url:
            async with client(base_url, tenant.slug, tenant.api_key) as http:
                response = await http.get("/todos", headers={"X-Request-ID": "held-to-stop"})
            assert response.status_code == 200
            assert "held-to-stop" not in written_ids(log)  # an hour to go: still held
        assert written_ids(log).count("held-to-stop") == 1


def test_a_line_on_another_loop_or_none_or_after_close_is_not_left_held() -> None:
    """A timer belongs to one event loop: lines held on a loop that has since closed are written
    as soon as a line arrives on another (or on none), and after close() every line at once."""

    async def one(access_log: AccessLog, request_id: str) -> None:
        access_log(request(request_id))

    with captured_log() as log:
        access_log = AccessLog(flush_seconds=3600)
        asyncio.run(one(access_log, "loop-a"))
        assert written_ids(log) == []  # held; loop A has closed with its timer
        asyncio.run(one(access_log, "loop-b"))
        assert written_ids(log) == ["loop-a"]  # loop B's line held on a timer of its own
        access_log(request("no-loop"))
        assert written_ids(log) == ["loop-a", "loop-b", "no-loop"]
        access_log.close()
        asyncio.run(one(access_log, "after-close"))
        assert written_ids(log) == ["loop-a", "loop-b", "no-loop", "after-close"]


def test_lines_a_process_still_holds_are_written_as_it_exits() -> None:
    """A process that never shut its app down (no lifespan, a loop closed with its timer still
    pending) writes what it holds at interpreter exit; the control: before exit, nothing."""
    script = (
        "import asyncio, logging, sys\n"
        "from tenancy.observability.access_log import AccessLog\n"
        "from tenancy.middleware.observer import RequestRecord\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stdout,\n"
        "                    format='%(message)s %(fields)s')\n"
        "log = AccessLog(flush_seconds=3600)\n"
        "async def main():\n"
        "    log(RequestRecord('GET', '/todos', 200, 0.001, 'acme', 'at-exit'))\n"
        "asyncio.run(main())\n"
        "print('before exit', flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    before, _, after = done.stdout.partition("before exit")
    assert "at-exit" not in before and "at-exit" in after, done.stdout


class CountedWrites(io.StringIO):
    """A stream that counts its write calls."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@contextmanager
def logging_as_served(log_format: str) -> Iterator[CountedWrites]:
    """configure_logging's set-up alone: pytest's own handlers are off the root meanwhile.
    (Call AccessLog inside a running event loop: with none, each line is written at once.)"""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    stream = CountedWrites()
    configure_logging(TenancySettings(log_format=log_format), stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


UNUSUAL = [
    request("plain"),
    RequestRecord("POST", '/odd "route" \\ é ☃', 404, 0.123456, None, "r-2", 1_700_000_002.9996),
    RequestRecord("DELETE", "<unmatched>", 503, 12.5, "t-1", "r-3", 1_700_000_003.0),
    request("last", 201, ended=1_700_000_004.5),
]
"""Lines with what a formatter must escape or round: quotes, a backslash, non-ASCII, no tenant,
a millisecond that rounds up, a server error (written at once, with the lines before it)."""


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_a_batch_written_in_one_write_reads_as_logging_writes_each_line(
    log_format: str,
) -> None:
    with logging_as_served(log_format) as direct:
        access_log = AccessLog(flush_seconds=3600)
        for record in UNUSUAL:
            access_log(record)
        access_log.flush()
    with logging_as_served(log_format) as one_by_one:
        logging.getLogger().handlers[0].addFilter(lambda _record: True)  # any filter: LogRecords
        access_log = AccessLog(flush_seconds=3600)
        for record in UNUSUAL:
            access_log(record)
        access_log.flush()
    assert direct.getvalue() == one_by_one.getvalue()
    assert direct.getvalue().count("\n") == len(UNUSUAL)
    assert (direct.writes, one_by_one.writes) == (2, len(UNUSUAL))  # the 503 wrote its batch


async def test_a_filter_on_the_handler_still_sees_and_decides_every_access_line() -> None:
    seen: list[int] = []

    def drop_not_found(record: logging.LogRecord) -> bool:
        seen.append(record.fields["status"])  # type: ignore[attr-defined]
        return record.fields["status"] != 404  # type: ignore[attr-defined]

    with logging_as_served("json") as stream:
        logging.getLogger().handlers[0].addFilter(drop_not_found)
        access_log = AccessLog(flush_seconds=3600)
        for record in UNUSUAL:
            access_log(record)
        access_log.flush()
    assert seen == [200, 404, 503, 201]
    assert [json.loads(line)["status"] for line in stream.getvalue().splitlines()] == [
        200,
        503,
        201,
    ]


async def test_a_handler_of_another_class_gets_log_records() -> None:
    class Collecting(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    collecting = Collecting()
    with logging_as_served("json") as stream:
        logging.getLogger("tenantry.access").addHandler(collecting)
        try:
            access_log = AccessLog(flush_seconds=3600)
            for record in UNUSUAL:
                access_log(record)
            access_log.flush()
        finally:
            logging.getLogger("tenantry.access").removeHandler(collecting)
    assert [r.fields["request_id"] for r in collecting.records] == ["plain", "r-2", "r-3", "last"]  # type: ignore[attr-defined]
    assert stream.getvalue().count("\n") == len(UNUSUAL)


async def test_a_line_a_stream_cannot_write_costs_that_line_not_the_batch() -> None:
    ascii_only = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    configure_logging(TenancySettings(log_format="text"), ascii_only)  # text keeps the "é" as is
    reported: list[logging.LogRecord] = []
    root.handlers[0].handleError = reported.append  # type: ignore[method-assign]
    try:
        access_log = AccessLog(flush_seconds=3600)
        for record in (request("before"), UNUSUAL[1], request("after")):
            access_log(record)
        access_log.flush()
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
    ascii_only.flush()
    lines = ascii_only.buffer.getvalue().decode().splitlines()  # type: ignore[attr-defined]
    assert [line.split("request_id=")[-1] for line in lines] == ["before", "after"]
    assert [r.fields["request_id"] for r in reported] == ["r-2"]  # type: ignore[attr-defined]
