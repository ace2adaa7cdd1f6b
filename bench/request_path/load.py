"""A closed-loop HTTP/1.1 load generator that runs in a process of its own.

Each of `connections` keep-alive connections to 127.0.0.1 sends its next request as soon as the
previous response is read, for `warmup` + `duration` seconds (or `max_requests` requests).
Requests pick a tenant uniformly at random (or sweep the tenants in order) and take the routes in
turn; a response counts only if it is a 200 whose body names the tenant, so a broken path can
never pass for a fast one. Raw asyncio streams on uvloop keep the generator to a few percent of
a core, leaving the rest of this 2-core machine to uvicorn and PostgreSQL.

With several targets (servers) the load alternates between them in slices of `slice_seconds`:
each gets the whole machine in its slices, and its neighbours in time are the other targets, so
whatever else runs on a shared machine weighs on all of them alike.

    python -m bench.request_path.load < spec.json > result.json

`run_load(spec)` does exactly that from the benchmark's own process.
"""

import asyncio
import json
import random
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
_CONTENT_LENGTH = b"content-length:"


@dataclass
class LoadSpec:
    targets: list[dict[str, Any]]
    """Each {"port": ..., "tenants": [{"headers": {...}, "marker": "text its bodies contain"}]}."""
    routes: dict[str, str]
    """Route name -> path; "{id}" becomes a random todo id in 1..todos."""
    todos: int
    duration: float
    warmup: float = 0.0
    connections: int = 8
    max_requests: int | None = None
    sweep: bool = False
    seed: int = 7
    slice_seconds: float = 0.25


@dataclass
class RouteStats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    """Every answer that was not a 200 naming the tenant, dropped connections included."""
    server_errors: int = 0
    """Of errors: 5xx answers."""
    dropped: int = 0
    """Of errors: connections closed (or broken) before a whole response."""


class RequestPlan:
    """Which request comes next to one target: a tenant, a route in turn and a todo id."""

    def __init__(self, spec: LoadSpec, tenants: list[dict[str, Any]], seed: int) -> None:
        self._rng = random.Random(seed)
        self._heads = [_header_block(t["headers"]) for t in tenants]
        self._markers = [t["marker"].encode() for t in tenants]
        self._routes = list(spec.routes.values())
        self._todos = spec.todos
        self._sweep = spec.sweep
        self._left = spec.max_requests
        self.issued = 0

    @property
    def exhausted(self) -> bool:
        return self._left is not None and self.issued >= self._left

    def next(self) -> tuple[int, bytes, bytes]:
        n = self.issued
        self.issued += 1
        tenant = n % len(self._heads) if self._sweep else self._rng.randrange(len(self._heads))
        route = n % len(self._routes)
        path = self._routes[route].replace("{id}", str(self._rng.randrange(self._todos) + 1))
        request = b"GET " + path.encode() + b" HTTP/1.1\r\n" + self._heads[tenant]
        return route, request, self._markers[tenant]


def _header_block(headers: dict[str, str]) -> bytes:
    lines = [f"Host: {HOST}"] + [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _content_length(head: bytes) -> int:
    at = head.lower().find(_CONTENT_LENGTH)
    if at < 0:
        raise ValueError("response without Content-Length")
    end = head.find(b"\r\n", at)
    return int(head[at + len(_CONTENT_LENGTH) : end])


@dataclass
class Schedule:
    """Which target's slice it is; the measured window is [record_from, until)."""

    start: float
    record_from: float
    until: float
    slice_seconds: float
    targets: int

    def active(self, now: float) -> int:
        return int((now - self.start) / self.slice_seconds) % self.targets

    def measured_seconds(self, target: int) -> float:
        """Time of target's slices inside the measured window."""
        total, edge = 0.0, self.start
        while edge < self.until:
            end = edge + self.slice_seconds
            if self.active(edge + self.slice_seconds / 2) == target:
                total += max(0.0, min(end, self.until) - max(edge, self.record_from))
            edge = end
        return total


class Stream:
    """One keep-alive connection to one target, opened on first use."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> tuple[bytes, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None
        self.writer.write(request)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            return head, await self.reader.readexactly(_content_length(head))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _drive(
    spec: LoadSpec, plans: list[RequestPlan], stats: list[list[RouteStats]], schedule: Schedule
) -> None:
    """One client connection per target, one request in flight at a time."""
    streams = [Stream(target["port"]) for target in spec.targets]
    try:
        while (sent := time.perf_counter()) < schedule.until:
            k = schedule.active(sent)
            if plans[k].exhausted:
                break
            route, request, marker = plans[k].next()
            try:
                head, body = await streams[k].exchange(request)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                stats[k][route].errors += 1
                stats[k][route].dropped += 1
                continue
            if sent < schedule.record_from:
                continue
            if head.startswith(b"HTTP/1.1 200") and marker in body:
                stats[k][route].latencies.append(time.perf_counter() - sent)
            else:
                stats[k][route].errors += 1
                stats[k][route].server_errors += head.startswith(b"HTTP/1.1 5")
    finally:
        for stream in streams:
            stream.close()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def summarize(stats: RouteStats, seconds: float) -> dict[str, float]:
    ordered = sorted(stats.latencies)
    return {
        "requests": len(ordered),
        "errors": stats.errors,
        "server_errors": stats.server_errors,
        "dropped": stats.dropped,
        "throughput": len(ordered) / seconds if seconds > 0 else 0.0,
        "p50_ms": percentile(ordered, 0.50) * 1000,
        "p90_ms": percentile(ordered, 0.90) * 1000,
        "p99_ms": percentile(ordered, 0.99) * 1000,
        "max_ms": (ordered[-1] if ordered else float("nan")) * 1000,
    }


async def generate(spec: LoadSpec) -> dict[str, Any]:
    plans = [
        RequestPlan(spec, target["tenants"], spec.seed + n) for n, target in enumerate(spec.targets)
    ]
    stats = [[RouteStats() for _ in spec.routes] for _ in spec.targets]
    start = time.perf_counter()
    schedule = Schedule(
        start,
        start + spec.warmup,
        start + spec.warmup + spec.duration,
        spec.slice_seconds,
        len(spec.targets),
    )
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(_drive(spec, plans, stats, schedule) for _ in range(spec.connections)))
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    if any(plan.exhausted for plan in plans):  # a sweep ended early: its own time counts
        schedule.until = min(schedule.until, time.perf_counter())
    return {
        "wall_seconds": time.perf_counter() - start,
        "loadgen_cpu_seconds": (cpu_after.ru_utime - cpu_before.ru_utime)
        + (cpu_after.ru_stime - cpu_before.ru_stime),
        "targets": [
            _target_result(plans[k], stats[k], spec, schedule.measured_seconds(k))
            for k in range(len(spec.targets))
        ],
    }


def _target_result(
    plan: RequestPlan, stats: list[RouteStats], spec: LoadSpec, seconds: float
) -> dict[str, Any]:
    everything = RouteStats(
        latencies=[x for s in stats for x in s.latencies],
        errors=sum(s.errors for s in stats),
        server_errors=sum(s.server_errors for s in stats),
        dropped=sum(s.dropped for s in stats),
    )
    return {
        "issued": plan.issued,
        "seconds": seconds,
        "total": summarize(everything, seconds),
        "routes": {name: summarize(s, seconds) for name, s in zip(spec.routes, stats, strict=True)},
    }


def run_load(spec: LoadSpec) -> dict[str, Any]:
    """Run the generator in a child process (so it never shares a GIL with what it measures)."""
    reply = subprocess.run(
        [sys.executable, "-m", "bench.request_path.load"],
        input=json.dumps(asdict(spec)),
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=spec.warmup + spec.duration + 600,
    )
    return json.loads(reply.stdout)


def main() -> None:
    spec = LoadSpec(**json.load(sys.stdin))
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] brings it wherever it builds
        run = asyncio.run
    else:
        run = uvloop.run
    json.dump(run(generate(spec)), sys.stdout)


if __name__ == "__main__":
    main()
