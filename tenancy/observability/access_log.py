"""One log line per request, from a RequestRecord: never a header, key or body.

Lines go to the `tenantry.access` logger in batches (`AccessLog`): making, formatting and
writing a line as each request ends cost about 50 µs of app CPU more than the same work done for
a batch at once (the logging and JSON code is cold by then; bench/README.md, issue 17), much as
nginx's `access_log ... buffer= flush=` trades a short delay for fewer writes.

When every handler a line reaches is a plain `logging.StreamHandler` with no filter and one of
this project's formatters (what `configure_logging` sets up), a batch goes to each handler's
stream in one write, each line made from the request's record by the formatter's `line` (the
same text `format` gives a LogRecord): no LogRecord per request, one write and flush per batch,
not per line (issue 17, bench/README.md). Each handler gets the same lines as through `logging`;
two handlers writing to one stream get their batches one after the other, not line by line
interleaved. A handler whose batch write fails gets that batch again one LogRecord per line
(so one unwritable line costs that line only, reported by logging as usual). Any other set-up
(another handler class, a filter on the logger or a handler, a formatter of one's own) gets each
line as a LogRecord through `logging`, as before.
"""

import asyncio
import atexit
import logging
import weakref
from typing import Any

from tenancy.middleware.observer import RequestRecord
from tenancy.observability.log_format import JsonFormatter, TextFormatter

access_logger = logging.getLogger("tenantry.access")

MAX_PENDING = 1000
"""Lines held at most before they are written, whatever the flush interval."""


_LINE_FORMATTERS = (JsonFormatter, TextFormatter)
"""Formatters that make a line from its parts (`line`), without a LogRecord."""


def _fields(record: RequestRecord) -> dict[str, Any]:
    return {
        "method": record.method,
        "route": record.route,
        "status": record.status,
        "duration_ms": round(record.duration * 1000, 2),
        "tenant": record.tenant,
        "request_id": record.request_id,
    }


def _direct_handlers() -> list[logging.StreamHandler] | None:
    """The handlers an access line reaches (as `Logger.callHandlers` finds them), when each is a
    plain StreamHandler (not a subclass) with no filter and a line formatter, and the access
    logger has no filter; else None (also when no handler is found: logging's last resort)."""
    if access_logger.filters or access_logger.disabled:
        return None
    handlers: list[logging.StreamHandler] = []
    logger: logging.Logger | None = access_logger
    while logger is not None:
        for handler in logger.handlers:
            if (
                type(handler) is not logging.StreamHandler
                or handler.filters
                or type(handler.formatter) not in _LINE_FORMATTERS
            ):
                return None
            handlers.append(handler)
        logger = logger.parent if logger.propagate else None
    return handlers or None


def _write_batch(pending: list[tuple[RequestRecord, int]]) -> None:
    """Every held line: one write per handler when the set-up allows (`_direct_handlers`),
    else one LogRecord per line."""
    handlers = _direct_handlers()
    if handlers is None:
        for record, level in pending:
            _write(record, level)
        return
    parts = [
        (record.ended, logging.getLevelName(level), level, _fields(record))
        for record, level in pending
    ]
    for handler in handlers:
        formatter = handler.formatter
        handler.acquire()
        try:
            text = "".join(
                formatter.line(ended, name, access_logger.name, "request", fields)  # type: ignore[union-attr]
                + handler.terminator
                for ended, name, level, fields in parts
                if level >= handler.level
            )
            if text:
                handler.stream.write(text)
                handler.flush()
        except Exception:
            # as StreamHandler.emit would for each line: this handler gets the batch line by
            # line, so one line it cannot write (a stream that cannot encode it, a full pipe)
            # costs that line and logging's own report of it, not the batch
            for record, level in pending:
                if level >= handler.level:
                    handler.handle(_log_record(record, level))
        finally:
            handler.release()


def _log_record(record: RequestRecord, level: int) -> logging.LogRecord:
    """record's line as a LogRecord: its time (`ts`) is the request's end, `record.ended`.
    Made directly: Logger.log would also walk the stack for the caller's file and line
    (findCaller), which no formatter here prints."""
    fields = {"fields": _fields(record)}
    entry = access_logger.makeRecord(
        access_logger.name, level, __file__, 0, "request", (), None, extra=fields
    )
    entry.created = record.ended  # when the request ended, not when its line is written
    entry.msecs = int(record.ended * 1000) % 1000 + 0.0
    return entry


def _write(record: RequestRecord, level: int) -> None:
    """record's line, now, through logging: its time (`ts`) is the request's end."""
    access_logger.handle(_log_record(record, level))


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
        if pending:
            _write_batch(pending)

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
