"""What Seamline measures, as Prometheus metrics (``GET /metrics``, docs/operations.md).

The metric objects live here, once; the code that does the work counts on them. With several
workers (``seamline run --workers N``) the supervisor gives every worker one
``PROMETHEUS_MULTIPROC_DIR`` before it starts, so prometheus-client keeps the values in files
there and ``exposition()`` adds every worker's up (its multiprocess mode). Labels stay few and
bounded: channel names, directions, queue names, error kinds; never a customer or a text.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import REGISTRY as _DEFAULT

__all__ = [
    "CONTENT_TYPE",
    "DELIVERIES",
    "DUPLICATES",
    "ERRORS",
    "HANDOFF_WAIT",
    "MESSAGES",
    "NLU_SECONDS",
    "OUTBOX_BACKLOG",
    "PIPELINE_SECONDS",
    "QUEUE_WAITING",
    "exposition",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SLOW = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)

MESSAGES = Counter(
    "seamline_messages",
    "Messages handled, by channel and direction (in: from customers, out: delivered)",
    ["channel", "direction"],
)
NLU_SECONDS = Histogram("seamline_nlu_seconds", "Time to understand one message", buckets=_FAST)
PIPELINE_SECONDS = Histogram(
    "seamline_pipeline_seconds", "Time from a message taken to its turn committed", ["channel"], buckets=_FAST
)
HANDOFF_WAIT = Histogram(
    "seamline_handoff_wait_seconds", "Time a conversation waited in a queue until a person took it", buckets=_SLOW
)
DELIVERIES = Counter(
    "seamline_deliveries",
    "Replies tried from the outbox, by channel and result (sent, retry, failed)",
    ["channel", "result"],
)
DUPLICATES = Counter("seamline_duplicates", "Platform re-deliveries dropped as already seen", ["channel"])
ERRORS = Counter("seamline_errors", "Failures, by where they happened", ["kind"])
# Read from the database when scraped (by whichever worker is asked); the latest reading is the answer.
QUEUE_WAITING = Gauge(
    "seamline_queue_waiting", "Conversations waiting for a person, by queue", ["queue"], multiprocess_mode="mostrecent"
)
OUTBOX_BACKLOG = Gauge(
    "seamline_outbox_backlog", "Replies stored but not yet delivered (or given up)", multiprocess_mode="mostrecent"
)


def exposition() -> bytes:
    """Every metric in Prometheus's text format: this process's, or every worker's in multiprocess mode."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest(_DEFAULT)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry)
