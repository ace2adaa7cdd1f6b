"""One log line per request, from a RequestRecord: never a header, key or body.

Lines go to the `tenantry.access` logger in batches (`AccessLog`): making, formatting and
writing a line as each request ends cost about 50 µs of app CPU more than the same work done for
a batch at once (the logging and JSON code is cold by then; bench/README.md, issue 17), much as
nginx's `access_log ... buffer= flush=` trades a short delay for fewer writes.
"""

import asyncio
import logging
from collections.abc import Callable

from tenancy.middleware.observer import RequestRecord

access_logger = logging.getLogger("tenantry.access")

MAX_PENDING = 1000
"""Lines held at most before they are written, whatever the flush interval."""


def log_request(record: RequestRecord) -> None:
    """Write record's line now; server errors are logged at ERROR, everything else at INFO. The
    line's time (`ts`) is the request's end, `record.ended`."""
    level = logging.ERROR if record.status >= 500 else logging.INFO
    if access_logger.isEnabledFor(level):
        _write(record, level)


def _write(record: RequestRecord, level: int) -> None:
    fields = {
        "method": record.method,
        "route": record.route,
        "status": record.status,
        "duration_ms": round(record.duration * 1000, 2),
        "tenant": record.tenant,
        "request_id": record.request_id,
    }
    # the record made directly: Logger.log would also walk the stack for the caller's file and
    # line (findCaller), which no formatter here prints (about 5 µs a request; issue 17)
    entry = access_logger.makeRecord(
        access_logger.name, level, __file__, 0, "request", (), None, extra={"fields": fields}
    )
    entry.created = record.ended  # when the request ended, not when its line is written
    entry.msecs = int(record.ended * 1000) % 1000 + 0.0
    access_logger.handle(entry)


class AccessLog:
    """A RequestObserver sink that writes each request's line (as `log_request` does) at most
    `flush_seconds` after the request ended, together with the other lines held by then.

    What it holds is written at once when a server error (status >= 500) ends a request, when
    MAX_PENDING lines are held, and on `flush()` (the app's lifespan calls it as the app stops).
    `flush_seconds` 0, or a call outside a running event loop, writes each line at once. Lines
    keep the order their requests ended in. One instance per app, called on its event loop only.
    """

    def __init__(self, flush_seconds: float, max_pending: int = MAX_PENDING) -> None:
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending
        self._pending: list[tuple[RequestRecord, int]] = []
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, record: RequestRecord) -> None:
        level = logging.ERROR if record.status >= 500 else logging.INFO
        if not access_logger.isEnabledFor(level):
            return
        self._pending.append((record, level))
        if level >= logging.ERROR or len(self._pending) >= self.max_pending:
            self.flush()
        elif self._timer is None:
            self._timer = self._later(self.flush)

    def _later(self, flush: Callable[[], None]) -> asyncio.TimerHandle | None:
        if self.flush_seconds <= 0:
            flush()
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to flush on later: now
            flush()
            return None
        return loop.call_later(self.flush_seconds, flush)

    def flush(self) -> None:
        """Write every line held, oldest first."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        for record, level in pending:
            _write(record, level)
