"""`/healthz` (each role of this process, the store and the hub) and `/metrics` (Prometheus text): no session needed,
so load balancers, container health checks and Prometheus can read them. Neither shows a secret."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from host.admin.context import AdminContext
from host.bus import BusError, StreamKind, stream_name

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_S = 2.0


async def _check_store(context: AdminContext) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await context.services.store.db.run(lambda session: session.execute(text("SELECT 1")))
    except TimeoutError:
        return "failed: no answer within 2 s"
    except Exception as exc:  # any driver error means the same to a health check: not usable now
        return f"failed: {type(exc).__name__}"
    return "ok"


async def _check_hub(context: AdminContext) -> str:
    servers = context.services.registry.server_names()
    if not servers:
        return "ok"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await context.services.bus.stream_info(stream_name(servers[0], StreamKind.CONTROL))
    except TimeoutError:
        return "failed: no answer within 2 s"
    except BusError as exc:
        return f"failed: {exc.code}"
    return "ok"


@router.get(
    "/healthz",
    summary="Health of this process: its roles, the store and the hub (503 when any is not ok); 200 with status "
    "'degraded' while it refuses new work (above its memory ceiling)",
)
async def healthz(request: Request) -> JSONResponse:
    context = AdminContext.of(request)
    report = context.health()
    roles = report.role_states()
    checks = {"store": await _check_store(context), "hub": await _check_hub(context)}
    healthy = all(state == "ok" for state in checks.values()) and all(state == "running" for state in roles.values())
    degraded = {condition.condition: condition.reason for condition in report.degraded}
    status = "failing" if not healthy else "degraded" if degraded else "ok"
    body = {"status": status, "roles": roles, "checks": checks, "degraded": degraded}
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/metrics", summary="Prometheus metrics of this process", response_class=Response)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
