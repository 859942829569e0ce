"""Log lines as text or as JSON objects (``SEAMLINE_LOG_FORMAT``), carrying the conversation they are about.

``conversation`` is set by the pipeline for the turn under way (and by whatever works on one
conversation); every log record made meanwhile carries it as ``conversation_id``. At INFO and
above a record names ids, never what a customer wrote or who they are (docs/operations.md).
"""

from __future__ import annotations

from contextvars import ContextVar

conversation: ContextVar[str | None] = ContextVar("seamline_conversation", default=None)
