"""The retail template's order form through the real pipeline (build(), Recorder adapters): asking
for a person mid-form goes to people without the form's question; the number runs the order action."""

from __future__ import annotations

from itertools import count

import pytest

from seamline.bots.app import build
from seamline.shared.message import Message

from tests.support import Recorder

_ids = count(1)


class Decisions:
    """A step after decide keeping what the dialogue decided."""

    name = "decisions"

    def __init__(self) -> None:
        self.seen = []

    async def __call__(self, turn, call_next) -> None:
        self.seen.append(turn.decision)
        await call_next(turn)


@pytest.fixture
async def seamline(settings, understanding):
    seamline = await build(settings, understanding=understanding)
    seamline.adapter = Recorder("telegram")
    seamline.pipeline.register(seamline.adapter)
    seamline.decisions = Decisions()
    seamline.pipeline.add_step(seamline.decisions, after="decide")
    yield seamline
    await seamline.close()


def say(text: str, sender: str = "900") -> Message:
    return Message(channel="telegram", address=sender, sender=sender, text=text, external_id=str(next(_ids)))


async def test_asking_for_a_person_mid_form_goes_to_people_without_the_forms_question(seamline):
    await seamline.pipeline.handle(say("where is my order"))
    assert "order number" in seamline.adapter.texts("900")[-1].lower()
    before = len(seamline.adapter.texts("900"))
    handled = await seamline.pipeline.handle(say("I want to talk to a human"))
    said = seamline.adapter.texts("900")[before:]
    assert said and not any("order number" in text.lower() for text in said)
    conversation = await seamline.store.conversation(handled.inbound.conversation_id)
    assert conversation.state == "queued"


async def test_the_order_number_runs_the_order_action(seamline):
    pytest.importorskip("seamline.bots.dialogue.actions")
    await seamline.pipeline.handle(say("where is my order", "901"))
    handled = await seamline.pipeline.handle(say("48213", "901"))
    assert "action_order_status" in seamline.decisions.seen[-1].actions
    session = await seamline.sessions.load(handled.inbound.customer_id)
    assert session.active_form is None and session.slots["order_number"] == "48213"


async def test_a_failed_action_is_answered_politely_and_recorded_for_the_console(settings, understanding, tmp_path):
    import shutil
    from dataclasses import replace

    import yaml

    config = tmp_path / "config"
    shutil.copytree(settings.config_dir, config)
    rules = yaml.safe_load((config / "rules.yml").read_text(encoding="utf-8"))
    rules["rules"].insert(0, {"name": "thanks breaks", "intent": "thanks", "then": ["action_not_written_yet"]})
    (config / "rules.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    seamline = await build(replace(settings, config_dir=config), understanding=understanding)
    try:
        adapter = Recorder("telegram")
        seamline.pipeline.register(adapter)
        handled = await seamline.pipeline.handle(say("thank you so much", "902"))
        assert "went wrong" in adapter.texts("902")[-1]
        events = await seamline.store.events(handled.inbound.customer_id)
        [failed] = [e for e in events if e["kind"] == "action_failed"]
        assert (
            failed["data"]["action"] == "action_not_written_yet" and "not a known action" in failed["data"]["problem"]
        )
        conversation = await seamline.store.conversation(handled.inbound.conversation_id)
        assert conversation.state == "bot"  # the conversation goes on
    finally:
        await seamline.close()
