"""GET /metrics: Prometheus text format, outside the tenant middleware (see PUBLIC_PREFIXES)."""

from fastapi import APIRouter, Request, Response

from tenancy.observability.metrics import EXPOSITION_CONTENT_TYPE, ServiceMetrics

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    service_metrics: ServiceMetrics = request.app.state.metrics
    return Response(await service_metrics.exposition(), media_type=EXPOSITION_CONTENT_TYPE)
