"""One log line per request, from a RequestRecord: never a header, key or body."""

import logging

from tenancy.observability.requests import RequestRecord

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
    access_logger.log(level, "request", extra={"fields": fields})
