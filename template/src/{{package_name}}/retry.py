"""Requests that are safe to run again run once more, in a fresh transaction.

Reads that lost their connection, and any request whose transaction the database rolled back
for a conflict (serialization failure, deadlock). The database error handler (errors.py) decides;
RetryMiddleware, added once to the app in main.py, runs the request again, so every route has
retries, including the ones added later.
"""

import logging

from fastapi import Request
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .failures import Failure, classify, describe

logger = logging.getLogger(__name__)

# Safe to run twice: they change nothing. Writes are never retried (they may have committed).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD"})
# In a request's scope while RetryMiddleware can still run it once more.
RETRY_POSSIBLE = "app.retry_possible"


class RunAgain(Exception):
    """Raised instead of an error response: RetryMiddleware runs the request once more."""


def run_again_if_safe(request: Request, error: Exception) -> None:
    """Raise RunAgain when running the request again is safe and it has not run twice yet."""
    if not request.scope.get(RETRY_POSSIBLE) or not isinstance(error, DBAPIError):
        return
    if (reason := _retry_reason(request.method, error)) is None:
        return
    logger.warning(
        "%s during %s %s, retrying once: %s",
        reason,
        request.method,
        request.url.path,
        describe(error),
    )
    raise RunAgain from error


def _retry_reason(method: str, error: DBAPIError) -> str | None:
    """Why running the request again is safe, or None when it is not."""
    if classify(error) is Failure.TRANSACTION_CONFLICT:
        return "transaction conflict"
    # SQLAlchemy sets this when the connection is gone and has discarded it, so the second
    # run checks out another. A write may have committed before the loss: never retried.
    if error.connection_invalidated and method in IDEMPOTENT_METHODS:
        return "connection lost"
    return None


class RetryMiddleware:
    """Runs an HTTP request a second time when its error handler raises RunAgain.

    The handler runs after the endpoint's session has ended (rolled back), and before any
    byte of the response is sent, so the second run starts afresh. The request body the first
    run read is replayed to the second.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = RecordedBody(receive)
        try:
            await self.app({**scope, RETRY_POSSIBLE: True}, body.receive, send)
        except RunAgain:
            await self.app({**scope, RETRY_POSSIBLE: False}, body.replay(), send)


class RecordedBody:
    """The request body as the first run received it, to be received again by the second."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._messages: list[Message] = []

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self._messages.append(message)
        return message

    def replay(self) -> Receive:
        recorded = list(self._messages)

        async def receive() -> Message:
            if recorded:
                return recorded.pop(0)
            return await self._receive()

        return receive
