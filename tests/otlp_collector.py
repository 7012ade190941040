"""An OTLP/HTTP endpoint on 127.0.0.1 that answers as an OpenTelemetry collector does.

It keeps what it is sent (the tests decode it), or only counts it (the bench, whose apps
rendered with observability=opentelemetry then pay for serialising and sending, not only for
recording).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, keep: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Receive)
        self.keep = keep
        self.lock = threading.Lock()
        self.exports = 0
        self.received: list[tuple[str, bytes]] = []


class _Receive(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
        assert isinstance(self.server, _Server)
        with self.server.lock:
            self.server.exports += 1
            if self.server.keep:
                self.server.received.append((self.path, body))

    def log_message(self, *_: Any) -> None:
        pass


class Collector:
    """Listens from construction to close()."""

    def __init__(self, keep: bool = True) -> None:
        self._server = _Server(keep)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def exports(self) -> int:
        """OTLP requests received so far."""
        return self._server.exports

    def bodies(self, path: str) -> list[bytes]:
        with self._server.lock:
            return [body for to, body in self._server.received if to == path]

    def traces(self) -> list[ExportTraceServiceRequest]:
        return [ExportTraceServiceRequest.FromString(body) for body in self.bodies("/v1/traces")]

    def metrics(self) -> list[ExportMetricsServiceRequest]:
        return [ExportMetricsServiceRequest.FromString(body) for body in self.bodies("/v1/metrics")]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
