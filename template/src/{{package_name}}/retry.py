"""Requests that are safe to run again run once more, in a fresh transaction.

Reads that lost their connection, and any request whose transaction the database rolled back
for a conflict (serialization failure, deadlock).
"""

import logging
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError

from .failures import Failure, classify, describe

logger = logging.getLogger(__name__)

# Safe to run twice: they change nothing. Writes are never retried (they may have committed).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD"})
# Where FastAPI keeps the exit stack of scope="function" dependencies, such as the session.
FUNCTION_SCOPE_KEY = "fastapi_function_astack"

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class RetryRoute(APIRoute):
    """A route whose requests run once more when running them again is safe.

    GET and HEAD, when the connection drops: the pool's checkout test replaces connections
    that died while idle; this covers the ones that die between checkout and the last query
    (a restart, a failover, a killed backend). Any method, when the database rolled the
    transaction back for a conflict: nothing of it was stored.
    """

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()

        async def handle_with_retry(request: Request) -> Response:
            if FUNCTION_SCOPE_KEY not in request.scope:
                return await handle(request)
            try:
                return await _attempt(handle, request)
            except DBAPIError as error:
                if (reason := _retry_reason(request, error)) is None:
                    raise
                logger.warning(
                    "%s during %s %s, retrying once: %s",
                    reason,
                    request.method,
                    request.url.path,
                    describe(error),
                )
                return await _attempt(handle, request)

        return handle_with_retry


def _retry_reason(request: Request, error: DBAPIError) -> str | None:
    """Why running the request again is safe, or None when it is not."""
    if classify(error) is Failure.TRANSACTION_CONFLICT:
        return "transaction conflict"
    # SQLAlchemy sets this when the connection is gone and has discarded it, so the second
    # attempt checks out another. A write may have committed before the loss: never retried.
    if error.connection_invalidated and request.method in IDEMPOTENT_METHODS:
        return "connection lost"
    return None


async def _attempt(handle: Handler, request: Request) -> Response:
    """One run of the endpoint; its session ends with it (rolled back if it failed)."""
    outer_stack = request.scope[FUNCTION_SCOPE_KEY]
    try:
        async with AsyncExitStack() as attempt_stack:
            request.scope[FUNCTION_SCOPE_KEY] = attempt_stack
            return await handle(request)
    finally:
        request.scope[FUNCTION_SCOPE_KEY] = outer_stack
