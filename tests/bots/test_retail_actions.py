"""The retail template's honest demo, through the real pipeline and its real rasa-sdk actions
(config/templates/retail/actions): an order's status from the shipped order table, an unknown order
passed to people with the reason, the callback form's phone check, and "remind me tomorrow"."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from seamline.bots.app import build
from seamline.bots.dialogue.reminders import SENT, Due, Scheduler
from seamline.shared.message import Message

from tests.support import Recorder

RETAIL_ACTIONS = "seamline.config.templates.retail.actions"


@pytest.fixture
async def shop(settings, understanding, monkeypatch, tmp_path):
    monkeypatch.setenv("SEAMLINE_DATA_DIR", str(tmp_path / "data"))  # where the order table is made
    seamline = await build(replace(settings, actions_module=RETAIL_ACTIONS), understanding=understanding)
    seamline.pipeline.register(Recorder("telegram"))
    yield seamline
    await seamline.close()


class Customer:
    def __init__(self, shop, sender: str = "100") -> None:
        self.shop, self.sender = shop, sender
        self.customer_id = ""

    async def says(self, text: str) -> list[str]:
        message = Message(channel="telegram", address=self.sender, sender=self.sender, text=text)
        handled = await self.shop.pipeline.handle(message)
        self.customer_id = handled.inbound.customer_id
        return [r.text for r in handled.replies]

    async def session(self):
        return await self.shop.sessions.load(self.customer_id)


async def test_a_known_order_gets_its_status_from_the_order_table(shop, tmp_path):
    customer = Customer(shop)
    (asked,) = await customer.says("where is my order?")
    assert "order number" in asked
    (status,) = await customer.says("48213")
    expected = (date.today() + timedelta(days=2)).isoformat()
    assert "48213" in status and "on its way" in status and "CDEK" in status and expected in status
    assert (tmp_path / "data" / "orders.db").is_file()  # the project's data folder, not the package's
    assert not (
        Path(__file__).resolve().parents[2] / "config" / "templates" / "retail" / "actions" / "orders.db"
    ).exists()
    (delivered,) = await customer.says("where is my order 10001")
    assert "10001" in delivered and "was delivered" in delivered
    (processing,) = await customer.says("what about my order 55555")
    assert "55555" in processing and "being prepared" in processing
    assert (await customer.session()).handoff == "bot"


async def test_an_unknown_order_goes_to_people_with_the_reason(shop):
    customer = Customer(shop)
    replies = await customer.says("where is my order 99999")
    assert "can't find order 99999" in replies[0] and len(replies) >= 2  # and what the handoff tells
    session = await customer.session()
    assert session.handoff == "queued"
    info = await shop.handoff.conversation(session.conversation_id)
    assert info.escalation["reason"] == "Order 99999 not found"


async def test_the_callback_form_refuses_a_wrong_phone_and_takes_a_good_one(shop):
    customer = Customer(shop)
    (asked,) = await customer.says("I'd like to request a callback")
    assert "phone number" in asked
    refused = await customer.says("12345")
    assert any("doesn't look like a phone number" in text for text in refused)
    assert (await customer.session()).slots.get("callback_phone") is None
    (when,) = await customer.says("+7 912 345-67-89")
    assert "good time to call" in when
    replies = await customer.says("tomorrow after 6 pm")
    assert "A colleague will call you at +79123456789 (tomorrow after 6 pm)" in replies[0]
    session = await customer.session()
    assert session.handoff == "queued" and session.active_form is None
    info = await shop.handoff.conversation(session.conversation_id)
    assert info.escalation["reason"] == "Callback to +79123456789, tomorrow after 6 pm"


async def test_remind_me_tomorrow_schedules_a_reminder_that_comes_back_tomorrow(shop):
    customer = Customer(shop)
    await customer.says("where is my order 48213")
    (said,) = await customer.says("remind me tomorrow")
    assert "remind you here tomorrow" in said
    (reminder,) = await shop.pipeline.reminders.pending(customer.customer_id)
    assert reminder.intent == "EXTERNAL_reminder" and not reminder.kill_on_user_message
    await customer.says("thanks")  # does not cancel it

    async def fire(due: Due) -> bool:
        return await shop.pipeline.trigger(due.customer_id, due.intent, due.entities, reminder=due.name) is not None

    assert await Scheduler(reminders=shop.pipeline.reminders, fire=fire).fire_due(reminder.at + timedelta(seconds=1))
    history = await shop.store.history(customer.customer_id)
    assert "You asked me to remind you" in history[-1].text and history[-1].channel == "telegram"
    assert await shop.pipeline.reminders.outcomes(customer.customer_id) == {"remind_tomorrow": SENT}


@pytest.mark.parametrize("template", ["retail", "minimal"])
def test_an_initialised_project_runs_its_own_actions_folder(tmp_path, template):
    from seamline.bots.project import init

    project = init(tmp_path / "bot", template=template, langs=("en",))
    toml = (project / "config" / "seamline.toml").read_text(encoding="utf-8")
    assert 'module = "actions"' in toml and "seamline.config.templates" not in toml.split("module = ")[1][:60]
    shipped = {p.name for p in (project / "actions").iterdir()}
    if template == "retail":
        assert {"__init__.py", "orders.py", "orders.csv", "order_status.py", "callback.py", "remind.py"} <= shipped
    else:
        assert shipped == {"__init__.py"}


async def test_the_same_actions_run_unchanged_on_a_rasa_action_server(settings, understanding, tmp_path, monkeypatch):
    """``seamline init --template retail``, then ``python -m rasa_sdk --actions actions`` in the project:
    the order table is made in the project's var/, and the answers are the same as in process."""
    from seamline.bots.project import init

    from tests.support import start_action_server

    for name in ("SEAMLINE_DATA_DIR", "SEAMLINE_ORDERS_DB"):
        monkeypatch.delenv(name, raising=False)
    project = init(tmp_path / "shop", template="retail", langs=("en",))
    with start_action_server(project, "actions") as url:
        remote = replace(settings, actions_module="no_local_actions_here", action_endpoint=url)
        seamline = await build(remote, understanding=understanding)
        seamline.pipeline.register(Recorder("telegram"))
        try:
            customer = Customer(seamline)
            (status,) = await customer.says("where is my order 48213")
            assert "on its way with CDEK" in status
            assert (project / "var" / "orders.db").is_file()
            await customer.says("I'd like to request a callback")
            refused = await customer.says("12345")
            assert any("doesn't look like a phone number" in text for text in refused)
            other = Customer(seamline, sender="200")
            await other.says("where is my order 99999")
            info = await seamline.handoff.conversation((await other.session()).conversation_id)
            assert info.escalation["reason"] == "Order 99999 not found"
        finally:
            await seamline.close()


def test_tomorrow_is_10_am_in_the_customers_time_zone_or_a_day_later():
    from datetime import UTC, datetime

    from seamline.config.templates.retail.actions.remind import tomorrow

    now = datetime(2030, 3, 1, 22, 30, tzinfo=UTC)  # already March 2 in Moscow
    assert tomorrow("Europe/Moscow", now).astimezone(UTC) == datetime(2030, 3, 3, 7, 0, tzinfo=UTC)
    assert tomorrow(None, now) == tomorrow("Not/A_Zone", now) == datetime(2030, 3, 2, 22, 30, tzinfo=UTC)
