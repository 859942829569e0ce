"""Log lines as text or as JSON objects (``SEAMLINE_LOG_FORMAT``), carrying the conversation they are about.

``conversation`` is set by the pipeline for the turn under way (and by whatever works on one
conversation); every log record made meanwhile carries it as ``conversation_id``. At INFO and
above a record names ids, never what a customer wrote or who they are (docs/operations.md).

JSON lines are for a log collector (Loki, Elasticsearch, CloudWatch): one object per line with
``time``, ``level``, ``logger``, ``message``, ``pid``, ``worker`` (under ``seamline run
--workers N``), ``conversation_id`` and ``exc_info`` (the traceback's text) when there is one.
"""

from __future__ import annotations

import logging
import os
import sys
from contextvars import ContextVar

conversation: ContextVar[str | None] = ContextVar("seamline_conversation", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ConversationFilter(logging.Filter):
    """Gives every record ``conversation_id`` (the turn under way, or None) and the worker's number."""

    def __init__(self) -> None:
        super().__init__()
        raw = os.environ.get("SEAMLINE_WORKER_INDEX", "")
        self.worker = int(raw) if raw.isdigit() else None

    def filter(self, record: logging.LogRecord) -> bool:
        record.conversation_id = conversation.get()
        record.worker = self.worker
        return True


class ErrorCounter(logging.Handler):
    """Counts every ERROR record (``log.exception`` on a request path, aiohttp's "Error handling
    request") in ``seamline_errors_total{kind}``, the kind being the module that logged it
    ("bots.web", "aiohttp.server"): one place, so no failure logged is left uncounted."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)

    def emit(self, record: logging.LogRecord) -> None:
        from seamline.shared.metrics import ERRORS

        ERRORS.labels(kind=record.name.removeprefix("seamline.")).inc()


def configure(level: str | int = "INFO", fmt: str = "text", *, force: bool = False) -> None:
    """The root logger writes to stderr as ``fmt`` says ("text" or "json"); called once by the CLI.
    Like ``logging.basicConfig``, a root logger that already has handlers (an embedding program's,
    a test runner's) is left alone unless ``force``."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines tell every migration step
    root = logging.getLogger()
    if root.handlers and not force:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ConversationFilter())
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d %(worker)s %(conversation_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
                json_ensure_ascii=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.addHandler(ErrorCounter())
    root.setLevel(level)
