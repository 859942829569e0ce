"""JSON log lines (SEAMLINE_LOG_FORMAT=json): one object per line, naming the conversation of the turn."""

from __future__ import annotations

import io
import json
import logging

import pytest
from prometheus_client import REGISTRY

from seamline.shared import logs


@pytest.fixture
def captured(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    kept = (list(root.handlers), root.level)
    logs.configure("INFO", "json", force=True)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in kept[0]:
        root.addHandler(handler)
    root.setLevel(kept[1])


def _errors(kind: str) -> float:
    return REGISTRY.get_sample_value("seamline_errors_total", {"kind": kind}) or 0.0


def test_a_json_line_names_the_conversation_under_way_and_the_exception(captured):
    errors_before = _errors("bots.web")
    token = logs.conversation.set("conv-42")
    try:
        logging.getLogger("seamline.bots.web").info("turn done for %s", "cust-1")
        try:
            raise ValueError("broken")
        except ValueError:
            logging.getLogger("seamline.bots.web").exception("turn failed")
    finally:
        logs.conversation.reset(token)
    logging.getLogger("seamline.bots.web").warning("between turns")
    first, second, third = (json.loads(line) for line in captured.getvalue().splitlines())
    assert first["message"] == "turn done for cust-1" and first["level"] == "INFO"
    assert first["logger"] == "seamline.bots.web" and isinstance(first["pid"], int) and first["time"]
    assert first["conversation_id"] == "conv-42" and second["conversation_id"] == "conv-42"
    assert "ValueError: broken" in second["exc_info"]
    assert third["conversation_id"] is None
    assert _errors("bots.web") == errors_before + 1  # the ERROR line is counted in seamline_errors_total
