"""One log line per request, from a RequestRecord: never a header, key or body.

Lines go to the `tenantry.access` logger in batches (`AccessLog`): making, formatting and
writing a line as each request ends cost about 50 µs of app CPU more than the same work done for
a batch at once (the logging and JSON code is cold by then; bench/README.md, issue 17), much as
nginx's `access_log ... buffer= flush=` trades a short delay for fewer writes.
"""

import asyncio
import atexit
import logging
import weakref

from tenancy.middleware.observer import RequestRecord

access_logger = logging.getLogger("tenantry.access")

MAX_PENDING = 1000
"""Lines held at most before they are written, whatever the flush interval."""


def _write(record: RequestRecord, level: int) -> None:
    """record's line, now: its time (`ts`) is the request's end, `record.ended`."""
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
    """A RequestObserver sink: each request's line (INFO; ERROR for a status >= 500) on the
    `tenantry.access` logger, written about `flush_seconds` after the request ended (a timer on
    the event loop, so later when the loop is busy), together with the other lines held by then.

    What it holds is written at once when a server error ends a request, when MAX_PENDING lines
    are held, on `flush()`, on `close()` (the app's lifespan calls it as the app shuts down;
    lines that come after it are written one by one), and at interpreter exit (atexit) for
    whatever a process that never ran its shutdown still holds. Written at once, too: every line
    with `flush_seconds` 0, and a line that arrives on no running event loop or on another loop
    than the one holding the timer (whose lines are written first). Lines keep the order their
    requests ended in. Not thread-safe: one instance per app, called from its event loop.
    """

    def __init__(self, flush_seconds: float, max_pending: int = MAX_PENDING) -> None:
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending
        self._pending: list[tuple[RequestRecord, int]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        atexit.register(_flush_at_exit, weakref.ref(self))

    def __call__(self, record: RequestRecord) -> None:
        level = logging.ERROR if record.status >= 500 else logging.INFO
        if not access_logger.isEnabledFor(level):
            return
        self._pending.append((record, level))
        if level >= logging.ERROR or len(self._pending) >= self.max_pending or self._closed:
            self.flush()
            return
        loop = _running_loop()
        if loop is None or self.flush_seconds <= 0:
            self.flush()
        elif self._timer is None or loop is not self._timer_loop:
            if self._timer is not None:  # held on a loop that is not this one: write them now
                self._pending.pop()
                self.flush()
                self._pending.append((record, level))
            self._timer = loop.call_later(self.flush_seconds, self.flush)
            self._timer_loop = loop

    def flush(self) -> None:
        """Write every line held, oldest first."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_loop = None
        pending, self._pending = self._pending, []
        for record, level in pending:
            _write(record, level)

    def close(self) -> None:
        """Write every line held; from now on, each line as its request ends."""
        self._closed = True
        self.flush()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _flush_at_exit(ref: "weakref.ReferenceType[AccessLog]") -> None:
    access_log = ref()
    if access_log is not None:
        access_log.close()
