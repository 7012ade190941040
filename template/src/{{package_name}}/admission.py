"""How many requests may use the database at once, and how long the others wait."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from .failures import DatabaseUnavailable


class ConnectionSlots:
    """At most `limit` requests hold a session at once; the others queue for `timeout` seconds.

    A queued request holds no connection and no thread, so a burst waits instead of exhausting
    the pool (`QueuePool limit ... reached`). The wait is bounded, unlike FastAPI's
    `max_concurrency`: when the database is stuck, the queue answers 503 instead of growing.
    """

    def __init__(self, limit: int | None, timeout: float) -> None:
        self.limit = limit
        self.timeout = timeout
        self._semaphore = anyio.Semaphore(limit) if limit else None

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """One slot for as long as the block runs; DatabaseUnavailable when none frees in time."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    async def acquire(self) -> None:
        """Take a slot, waiting at most `timeout` seconds; DatabaseUnavailable when none frees."""
        if self._semaphore is None:
            return
        # A free slot, the common case, costs no timer. A slot is only ever free when no
        # request waits for one, so this jumps no queue.
        try:
            self._semaphore.acquire_nowait()
            return
        except anyio.WouldBlock:
            pass
        with anyio.move_on_after(self.timeout):
            await self._semaphore.acquire()
            return
        raise DatabaseUnavailable(
            f"no database connection free within {self.timeout} s "
            f"({self.limit} requests are using the database)"
        )

    def release(self) -> None:
        if self._semaphore is not None:
            self._semaphore.release()
