"""alembic.ini's log handler: progress on stdout, problems on stderr.

Alembic itself prints `FAILED: ...` on stdout and logs the same message at ERROR; with this handler
the ERROR record is the one line a failed `alembic` command leaves on stderr, and the INFO lines
(context, each tenant, each revision run) are ordinary output.
"""

import logging
import sys


class SplitStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Records below WARNING go to stdout, the others to stderr (looked up at emit time, so
    redirections made after logging is configured are honoured)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stdout if record.levelno < logging.WARNING else sys.stderr)
        super().emit(record)
