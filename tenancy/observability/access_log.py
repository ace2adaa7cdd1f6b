"""One log line per request, from a RequestRecord: never a header, key or body."""

import logging

from tenancy.middleware.observer import RequestRecord

access_logger = logging.getLogger("tenantry.access")


def log_request(record: RequestRecord) -> None:
    """A RequestObserver sink; server errors are logged at ERROR, everything else at INFO."""
    level = logging.ERROR if record.status >= 500 else logging.INFO
    if not access_logger.isEnabledFor(level):
        return
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
    access_logger.handle(entry)
