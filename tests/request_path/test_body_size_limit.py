"""The body size limit (TENANTRY_MAX_BODY_BYTES): a body of exactly the cap passes, a declared one
over it is 413 before authentication, a streamed one is cut off as it passes the cap. Every
refusal is problem+json. (Moved from tests/api/test_hostile_limits.py.)"""

import asyncio
import json

import pytest

from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.middleware.body_size import BodySizeLimit
from tenancy.settings import TenancySettings
from tenancy.testing.servers import tenant_headers
from tests.support.common import raw_request

PROBLEM = "application/problem+json"


def raw_headers(tenant: CreatedTenant) -> list[tuple[bytes, bytes]]:
    return [
        (k.encode(), v.encode()) for k, v in tenant_headers(tenant.slug, tenant.api_key).items()
    ]


@pytest.fixture(scope="module")
def cap(runtime_settings: TenancySettings) -> int:
    return runtime_settings.max_body_bytes


def padded_todo(size: int) -> bytes:
    """A valid todo body of exactly `size` bytes (JSON allows trailing whitespace)."""
    body = b'{"content": "fits"}'
    return body + b" " * (size - len(body))


async def test_a_body_of_exactly_the_cap_is_accepted(
    runtime_api: str, tenant: CreatedTenant, cap: int
) -> None:
    status, _, body = await raw_request(
        runtime_api, "POST", "/todos", raw_headers(tenant), padded_todo(cap)
    )
    assert status == 201, body


async def test_a_declared_body_over_the_cap_is_413(
    runtime_api: str, tenant: CreatedTenant, cap: int
) -> None:
    for headers in (raw_headers(tenant), []):  # refused before authentication, too
        status, response_headers, body = await raw_request(
            runtime_api, "POST", "/todos", headers, padded_todo(cap + 1)
        )
        assert (status, response_headers["content-type"]) == (413, PROBLEM)
        assert b"/body-too-large" in body


async def test_a_streamed_body_is_counted_as_it_arrives(
    runtime_api: str, tenant: CreatedTenant, cap: int
) -> None:
    """Chunked, so no Content-Length to check: the answer comes once the cap is passed, while
    the client is still sending (it never sends the end of the body)."""
    host, port = runtime_api.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = [b"POST /todos HTTP/1.1", b"Host: " + host.encode(), b"Transfer-Encoding: chunked"]
    head += [name + b": " + value for name, value in raw_headers(tenant)]
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + chunk(b'{"content": "'))
    sent = 0
    while sent <= cap:
        writer.write(chunk(b"x" * 1024))
        sent += 1024
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["type"].endswith("/body-too-large")


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}".encode() + b"\r\n" + data + b"\r\n"


@pytest.mark.parametrize(
    ("http_version", "headers", "wrapped"),
    [
        ("1.1", [(b"host", b"x")], False),  # HTTP/1.x with no length and no chunking: no body
        ("1.0", [(b"host", b"x")], False),
        ("1.1", [(b"host", b"x"), (b"content-length", b"3")], True),
        ("1.1", [(b"host", b"x"), (b"transfer-encoding", b"chunked")], True),
        ("2", [(b"host", b"x")], True),  # HTTP/2 frames a body without either header
    ],
)
async def test_only_a_request_that_may_carry_a_body_has_its_receive_counted(
    http_version: str, headers: list[tuple[bytes, bytes]], wrapped: bool
) -> None:

    seen: list[object] = []

    async def app(_scope: dict, receive: object, _send: object) -> None:
        seen.append(receive)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: dict) -> None:
        return None

    scope = {
        "type": "http",
        "http_version": http_version,
        "method": "POST",
        "path": "/todos",
        "headers": headers,
    }
    await BodySizeLimit(app, max_bytes=10)(scope, receive, send)
    assert (seen[0] is not receive) is wrapped
