"""Liveness (the process answers) and readiness (the database answers, quickly)."""

import anyio
from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from ..db import DatabaseDep
from ..failures import DatabaseUnavailable, classify, describe
from ..settings import get_settings

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "The database did not answer in time"}})
async def ready(database: DatabaseDep) -> JSONResponse:
    """SELECT 1 within HEALTH_TIMEOUT seconds, even when the database hangs."""
    timeout = get_settings().health_timeout
    try:
        with anyio.fail_after(timeout):
            await database.select_one()
    except TimeoutError:
        error: Exception = DatabaseUnavailable(f"no answer within {timeout:g} s")
    # Whatever the cause, a readiness probe answers: it never becomes a 500.
    except Exception as caught:
        error = caught
    else:
        return JSONResponse({"status": "ok", "pool": database.pool_figures()})
    body = {
        "status": "unavailable",
        "error": str(classify(error)),
        "cause": describe(error),
        "pool": database.pool_figures(),
    }
    return JSONResponse(body, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
