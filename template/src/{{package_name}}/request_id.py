"""Each request's id: taken from X-Request-ID when a proxy sent a usable one, else made here.

It is on every log line written while the request runs (logs.py), and in the response's
X-Request-ID header, so a client's report, the proxy's log and this app's log name the same
request.
"""

import re
import uuid
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
# Printable ASCII without spaces, as ids from proxies and tracers are: nothing else can reach a
# log line (no newline to forge one, no escape sequence).
USABLE_ID = re.compile(r"[\x21-\x7e]{1,128}")

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIdMiddleware:
    """Sets request_id for the request's run, and returns it in the response's headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER.encode(), b"").decode("latin-1")
        current = given if USABLE_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id.set(current)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = current
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
