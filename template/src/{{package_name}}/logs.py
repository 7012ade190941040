"""Log lines as text for development, or as JSON for production (LOG_FORMAT), each naming the
request it was written for (request_id.py)."""

import json
import logging
from datetime import UTC, datetime
from typing import Any

from .request_id import request_id

TEXT_FORMAT = "%(levelname)s:     %(name)s: %(message)s"
# Uvicorn's own loggers: the server's messages and its access log.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.access")


class TextFormatter(logging.Formatter):
    """Uvicorn's style, with the request's id at the end of lines written for a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if current := getattr(record, "request_id", None):
            return f"{line} [request {current}]"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line, as log collectors read them."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if current := getattr(record, "request_id", None):
            entry["request_id"] = current
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, log_format: str) -> None:
    """Give the app's loggers a handler, and every record the id of the request it is for."""
    _record_request_ids()
    formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    # Like basicConfig, nothing changes when the root logger has handlers already.
    logging.basicConfig(level=level, handlers=[handler])
    if log_format == "json":
        for name in UVICORN_LOGGERS:
            for uvicorn_handler in logging.getLogger(name).handlers:
                uvicorn_handler.setFormatter(formatter)


def _record_request_ids() -> None:
    """Every record made from now on carries request_id, whichever logger or handler gets it."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "adds_request_id", False):
        return

    def make_record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        record.request_id = request_id.get()
        return record

    make_record_with_request_id.adds_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record_with_request_id)
