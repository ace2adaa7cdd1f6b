"""What the request observer (request id, access log line, metrics) costs per request.

Calls the real app in-process as an ASGI callable (no sockets, no HTTP client, no database:
the public /healthz route), interleaving variants so that drift hits all alike:

- full: the app as served (observer with the JSON access log and metrics, tenant middleware,
  rate limit);
- no log: the same, with the access logger above INFO (metrics still recorded);
- no observer: the app without RequestObserver at all.

    .venv/bin/python -m bench.observability_overhead [--requests 5000] [--rounds 3]
"""

import argparse
import asyncio
import logging
import os
import statistics
import time

from fastapi import FastAPI

from service.app import create_app
from tenancy.observability.access_log import access_logger
from tenancy.observability.log_format import JsonFormatter
from tenancy.observability.requests import RequestObserver
from tenancy.settings import TenancySettings

SETTINGS = TenancySettings(database_url="postgresql+asyncpg://unused@127.0.0.1/unused")


def without_observer() -> FastAPI:
    app = create_app(SETTINGS)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not RequestObserver]
    return app


def healthz_scope() -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/healthz",
        "raw_path": b"/healthz",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


async def receive() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


async def discard(_message: dict) -> None:
    return None


async def per_request_us(app: FastAPI, requests: int, log_level: int) -> float:
    access_logger.setLevel(log_level)
    await app(healthz_scope(), receive, discard)  # builds the middleware stack
    started = time.perf_counter()
    for _ in range(requests):
        await app(healthz_scope(), receive, discard)
    return (time.perf_counter() - started) / requests * 1e6


def log_to_devnull() -> None:
    """Formatted as in production, written nowhere: the cost of the line, not of the disk."""
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives for the run
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)


async def main(requests: int, rounds: int) -> None:
    variants = {
        "full (JSON access log + metrics)": (create_app(SETTINGS), logging.INFO),
        "observer, access log off": (create_app(SETTINGS), logging.WARNING),
        "no observer": (without_observer(), logging.INFO),
    }
    timings: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (app, level) in variants.items():
            timings[name].append(await per_request_us(app, requests, level))
    base = statistics.median(timings["no observer"])
    print(f"{requests} GET /healthz x {rounds} rounds, in-process ASGI (median of rounds)")
    print(f"{'variant':<36} {'us/req':>8} {'vs none':>8}")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"{name:<36} {median:8.1f} {median - base:+8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    log_to_devnull()
    asyncio.run(main(args.requests, args.rounds))
