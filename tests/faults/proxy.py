"""A TCP proxy that can stop forwarding: a peer that accepts and then never answers.

That is a database (or pooler) that hangs while the kernel keeps acknowledging: TCP keepalives
and tcp_user_timeout see a healthy connection, so only a client-side deadline ends the wait.
It runs on an event loop in a thread of the test process.
"""

from __future__ import annotations

import asyncio
import threading

CHUNK = 65536


class StallingProxy:
    def __init__(self, listen_host: str, target_host: str, target_port: int) -> None:
        self._listen_host = listen_host
        self._target = (target_host, target_port)
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def host(self) -> str:
        return self._listen_host

    def stall(self) -> None:
        """Keep accepting and reading, forward nothing, close nothing."""
        self._forwarding.clear()

    def resume(self) -> None:
        self._forwarding.set()

    def __enter__(self) -> StallingProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, self._listen_host, 0), self._loop
        ).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._forwarding.set()
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        try:
            upstream_reader, upstream = await asyncio.open_connection(*self._target)
        except OSError:
            client.close()
            return
        await asyncio.gather(
            self._pump(client_reader, upstream), self._pump(upstream_reader, client)
        )

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(CHUNK):
                while not self._forwarding.is_set():
                    await asyncio.sleep(0.05)
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.close()
