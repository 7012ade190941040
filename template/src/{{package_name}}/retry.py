"""Reads that lose their connection mid-request run once more, on a fresh connection."""

import logging
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError

from .errors import describe

logger = logging.getLogger(__name__)

# Safe to run twice: they change nothing. Writes are never retried (they may have committed).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD"})
# Where FastAPI keeps the exit stack of scope="function" dependencies, such as the session.
FUNCTION_SCOPE_KEY = "fastapi_function_astack"

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class RetryReadsRoute(APIRoute):
    """A route whose GET and HEAD requests are retried once when the connection drops.

    pool_pre_ping replaces connections that died while idle in the pool; this covers the ones
    that die between checkout and the last query (a restart, a failover, a killed backend).
    """

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()

        async def handle_with_retry(request: Request) -> Response:
            if request.method not in IDEMPOTENT_METHODS or FUNCTION_SCOPE_KEY not in request.scope:
                return await handle(request)
            try:
                return await _attempt(handle, request)
            except DBAPIError as error:
                # SQLAlchemy sets this when the connection is gone and has discarded it, so
                # the second attempt checks out another.
                if not error.connection_invalidated:
                    raise
                logger.warning(
                    "connection lost during %s %s, retrying once: %s",
                    request.method,
                    request.url.path,
                    describe(error),
                )
                return await _attempt(handle, request)

        return handle_with_retry


async def _attempt(handle: Handler, request: Request) -> Response:
    """One run of the endpoint; its session ends with it (rolled back if it failed)."""
    outer_stack = request.scope[FUNCTION_SCOPE_KEY]
    try:
        async with AsyncExitStack() as attempt_stack:
            request.scope[FUNCTION_SCOPE_KEY] = attempt_stack
            return await handle(request)
    finally:
        request.scope[FUNCTION_SCOPE_KEY] = outer_stack
