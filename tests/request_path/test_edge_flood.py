"""Raw-socket floods against `tenantry serve` (real uvicorn, its own process): request heads are
bounded in bytes, header lines, time and open connections, and the server's memory (RSS) stays
bounded while it is flooded. Each flood is bounded in bytes and time; each mechanism has a
negative control against uvicorn as it ran before (httptools, no deadline)."""

import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import psutil
import pytest
import pytest_asyncio

from service.paths import PROJECT_ROOT
from tests.support.common import TENANTRY

HEADER_TIMEOUT = 2.0
MAX_CONNECTIONS = 100
MAX_HEADER_BYTES = 16 * 1024
MiB = 1024 * 1024

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port

    @property
    def rss(self) -> int:
        return psutil.Process(self.process.pid).memory_info().rss


async def _serve(command: list[str], env: dict[str, str], port: int) -> AsyncIterator[Server]:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async with asyncio.timeout(60):
                while True:
                    assert process.returncode is None, "server exited early"
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)
        yield Server(process, port)
    finally:
        process.terminate()
        try:
            async with asyncio.timeout(30):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


@pytest_asyncio.fixture(scope="module")
async def edge(database: str) -> AsyncIterator[Server]:
    """`tenantry serve` as shipped, with a short header deadline and a small connection cap."""
    port = free_port()
    env = {
        **os.environ,
        "TENANTRY_DATABASE_URL": database,
        "TENANTRY_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "TENANTRY_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "TENANTRY_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
        "TENANTRY_LOG_LEVEL": "ERROR",
    }
    async for server in _serve([TENANTRY, "serve", "--port", str(port)], env, port):
        yield server


@pytest_asyncio.fixture(scope="module")
async def unbounded(database: str) -> AsyncIterator[Server]:
    """Negative control: the same app under uvicorn's defaults, as `tenantry serve` ran before."""
    port = free_port()
    env = {**os.environ, "TENANTRY_DATABASE_URL": database, "TENANTRY_LOG_LEVEL": "ERROR"}
    command = [sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app"]
    command += ["--port", str(port), "--http", "httptools", "--log-level", "error"]
    async for server in _serve(command, env, port):
        yield server


async def open_head(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    return reader, writer


async def flood(port: int, chunk: Callable[[int], bytes], total: int) -> tuple[int, bytes, bool]:
    """Send an unfinished head of up to `total` bytes (chunk(i) each time) until the server
    answers or closes, then wait up to 5 s for its answer; returns (bytes sent, what the server
    answered, whether it closed the connection: EOF or reset)."""
    reader, writer = await open_head(port)
    sent, i = 0, 0
    answer, closed = b"", False
    try:
        async with asyncio.timeout(60):
            while sent < total:
                data = chunk(i)
                writer.write(data)
                await writer.drain()
                sent, i = sent + len(data), i + 1
                if reader.at_eof() or reader._buffer:  # an answer is waiting
                    break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    answer = await reader.read()
                    closed = True  # read() returns at EOF only
    except (ConnectionError, OSError):
        closed = True
        with contextlib.suppress(ConnectionError, OSError):
            answer = bytes(reader._buffer)  # what came before a reset
    finally:
        writer.close()
    return sent, answer, closed


def problem(answer: bytes) -> tuple[int, str]:
    """The status and problem type of a raw HTTP answer."""
    status_line, _, rest = answer.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), json.loads(body)["type"].rsplit("/", 1)[1]


def refused(answer: bytes, closed: bool) -> bool:
    """The server's answer to a head past the cap: 431 problem+json and close, or only a reset
    when the client was still sending as it closed (the reset can overtake the answer)."""
    return closed and (answer == b"" or problem(answer) == (431, "request-head-too-large"))


async def test_a_head_past_the_byte_cap_is_answered_431(edge: Server) -> None:
    reader, writer = await open_head(edge.port)
    writer.write(b"X-Big: " + b"x" * (MAX_HEADER_BYTES + 1024))  # all sent: nothing to reset
    async with asyncio.timeout(30):
        answer = await reader.read()
    writer.close()
    assert problem(answer) == (431, "request-head-too-large")


async def test_a_head_the_parser_cannot_read_is_answered_400_malformed_request(
    edge: Server,
) -> None:
    """httptools refuses a request line with a space in the method; the edge answers it as
    problem+json and closes. A well-formed head on the same kind of connection gets through."""
    answers = []
    for head in (b"GE T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /healthz HTTP/1.1\r\n"):
        reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
        writer.write(head + (b"" if head.endswith(b"\r\n\r\n") else b"Connection: close\r\n\r\n"))
        async with asyncio.timeout(30):
            answers.append(await reader.read())
        writer.close()
    assert problem(answers[0]) == (400, "malformed-request")
    assert answers[1].startswith(b"HTTP/1.1 200 ")


async def test_100_000_header_lines_are_refused_and_closed(edge: Server) -> None:
    total = 100_000 * len(b"a: b\r\n")  # socket buffers may take it all before the refusal
    _sent, answer, closed = await flood(edge.port, lambda i: b"a: b\r\n" * 1000, total)
    assert refused(answer, closed)


async def test_negative_control_uvicorn_defaults_take_100_000_header_lines(
    unbounded: Server,
) -> None:
    total = 100_000 * len(b"a: b\r\n")
    sent, answer, closed = await flood(unbounded.port, lambda i: b"a: b\r\n" * 1000, total)
    assert (sent, answer, closed) == (total, b"", False)  # still waiting for the head's end


async def test_one_8_mb_header_is_refused_long_before_it_ends(edge: Server) -> None:
    def chunk(i: int) -> bytes:
        return (b"X-Big: " if i == 0 else b"") + b"x" * 65536

    sent, answer, closed = await flood(edge.port, chunk, 8 * MiB)
    assert refused(answer, closed)
    assert sent < 8 * MiB  # the reset stopped the sender


async def test_negative_control_uvicorn_defaults_take_the_whole_8_mb_header(
    unbounded: Server,
) -> None:
    def chunk(i: int) -> bytes:
        return (b"X-Big: " if i == 0 else b"") + b"x" * 65536

    sent, answer, closed = await flood(unbounded.port, chunk, 8 * MiB)
    assert (sent, answer, closed) == (8 * MiB + 7, b"", False)


async def test_too_many_header_lines_within_the_byte_cap_are_refused_by_the_app(
    edge: Server,
) -> None:
    reader, writer = await open_head(edge.port)
    writer.write(b"".join(f"x-{n}: y\r\n".encode() for n in range(500)) + b"\r\n")
    async with asyncio.timeout(30):
        answer = await reader.read()
    writer.close()
    assert problem(answer) == (431, "too-many-headers")


def unread_bytes(port: int) -> int:
    """Bytes the kernel still holds on TCP connections to `port`: sent by a client and not yet
    acknowledged, or received by the server and not yet read by it (Linux: /proc/net/tcp)."""
    total = 0
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            tx_queue, rx_queue = (int(n, 16) for n in fields[4].split(":"))
            if state == "0A":  # LISTEN: its rx_queue is the accept backlog
                continue
            if int(local.rsplit(":", 1)[1], 16) == port:
                total += rx_queue
            elif int(remote.rsplit(":", 1)[1], 16) == port:
                total += tx_queue
    return total


async def unfinished_heads_rss_growth(server: Server, connections: int, each: int) -> int:
    """RSS growth (bytes) of the server while `connections` clients each send `each` bytes of
    one unfinished head, all at once and held open."""
    before = server.rss

    async def one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await open_head(server.port)
        with contextlib.suppress(ConnectionError, OSError):
            for _ in range(each // 65536):
                writer.write(b"X-Pad-" + b"p" * 65530 + b"")
                await writer.drain()
        return reader, writer

    async with asyncio.timeout(60):
        held = await asyncio.gather(*(one() for _ in range(connections)))
        while True:  # until the server has read all that was sent (a fixed sleep raced it)
            buffered = sum(writer.transport.get_write_buffer_size() for _r, writer in held)
            if buffered == 0 and unread_bytes(server.port) == 0:
                break
            await asyncio.sleep(0.05)
    growth = server.rss - before
    for _reader, writer in held:
        writer.close()
    return growth


async def test_unfinished_heads_do_not_raise_server_memory(edge: Server) -> None:
    growth = await unfinished_heads_rss_growth(edge, connections=32, each=1 * MiB)
    assert growth < 12 * MiB, f"RSS grew {growth / MiB:.1f} MiB for 32 MiB of unfinished heads"


async def test_negative_control_uvicorn_defaults_buffer_unfinished_heads(
    unbounded: Server,
) -> None:
    growth = await unfinished_heads_rss_growth(unbounded, connections=32, each=1 * MiB)
    assert growth > 16 * MiB, f"RSS grew only {growth / MiB:.1f} MiB"


async def trickling_connections(port: int, count: int, seconds: float) -> int:
    """Open `count` connections that send one byte of a head every 0.2 s for `seconds`;
    returns how many the server closed (EOF or reset) in that time."""
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
    closed: set[int] = set()
    head = b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"s" * 10_000
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    i = 0
    while loop.time() < end and len(closed) < count:
        for n, (reader, writer) in enumerate(streams):
            if n in closed:
                continue
            try:
                if reader.at_eof():
                    raise ConnectionResetError
                writer.write(head[i : i + 1])
                await writer.drain()
            except (ConnectionError, OSError):
                closed.add(n)
        i += 1
        await asyncio.sleep(0.2)
    for _reader, writer in streams:
        writer.close()
    return len(closed)


async def test_slow_header_connections_are_closed_after_the_deadline(edge: Server) -> None:
    # hang guard: 4x the deadline; the keep-alive timer alone (5 s, reset by every byte) never
    # closes them
    assert await trickling_connections(edge.port, 60, 4 * HEADER_TIMEOUT + 2) == 60


async def test_negative_control_uvicorn_defaults_keep_slow_headers_open(
    unbounded: Server,
) -> None:
    assert await trickling_connections(unbounded.port, 60, 4 * HEADER_TIMEOUT + 2) == 0


async def test_a_slow_head_that_arrived_in_part_is_answered_408(edge: Server) -> None:
    reader, writer = await open_head(edge.port)
    async with asyncio.timeout(4 * HEADER_TIMEOUT):
        answer = await reader.read()
    writer.close()
    assert problem(answer) == (408, "request-timeout")


async def test_connections_past_the_cap_are_closed_at_once(edge: Server) -> None:
    """The held connections each sent part of a head: the deadline answers them 408. The ones
    past the cap are reset when accepted, so they never get that answer."""
    held = [await open_head(edge.port) for _ in range(MAX_CONNECTIONS)]
    extra = [await open_head(edge.port) for _ in range(20)]

    async def answer(reader: asyncio.StreamReader) -> bytes:
        try:
            return await reader.read()
        except (ConnectionError, OSError):
            return b""

    async with asyncio.timeout(4 * HEADER_TIMEOUT):
        held_answers = await asyncio.gather(*(answer(r) for r, _w in held))
        extra_answers = await asyncio.gather(*(answer(r) for r, _w in extra))
    for _r, writer in held + extra:
        writer.close()
    assert sum(a.startswith(b"HTTP/1.1 408") for a in held_answers) >= MAX_CONNECTIONS - 1
    assert extra_answers == [b""] * 20


async def test_a_complete_request_is_still_served(edge: Server) -> None:
    """Negative control for all of the above: an ordinary request passes the edge."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.port}") as http:
        response = await http.get("/healthz", headers={f"x-{n}": "y" for n in range(50)})
    assert response.status_code == 200


async def test_pipelined_requests_past_the_byte_cap_in_one_write_are_all_served(
    edge: Server,
) -> None:
    """The byte cap is per request head: many small pipelined heads sent in one write (far more
    than MAX_HEADER_BYTES in all) are each served, not taken for one oversized head."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 200 + b"\r\n\r\n"
    count = 3 * MAX_HEADER_BYTES // len(head)
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(head * count)
    await writer.drain()
    answers = 0
    async with asyncio.timeout(30):
        while answers < count:
            status = await reader.readline()
            assert status.startswith(b"HTTP/1.1 200"), status
            length = 0
            while (line := await reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            answers += 1
    writer.close()
    assert answers == count
