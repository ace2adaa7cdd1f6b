"""A real uvicorn server on an event loop of its own thread, for synchronous test drivers
(hypothesis state machines, schemathesis) that cannot await."""

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any, TypeVar

from fastapi import FastAPI

from tests.support.common import running_server

T = TypeVar("T")


class BackgroundLoop:
    """Runs coroutines on a private loop; the server and every client of it live there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@contextmanager
def served_in_background(app: FastAPI) -> Iterator[tuple[BackgroundLoop, str]]:
    """Serve app with uvicorn on a background loop; yields that loop and the base URL."""
    background = BackgroundLoop()
    stack = AsyncExitStack()
    try:
        base_url = background.run(stack.enter_async_context(running_server(app)))
        yield background, base_url
    finally:
        background.run(stack.aclose())
        background.close()
