"""Reminders (Rasa's ReminderScheduled / ReminderCancelled): stored by the ``remind`` step, fired by the
scheduler through ``Pipeline.trigger`` on the channel that reaches the customer then; they survive a
restart, a message cancels those that ask for it, and two schedulers on one database fire each once.

The restart test uses the retail template's real rasa-sdk action (``action_remind_tomorrow``); the
others play what an action's events give (``Decision.reminders`` / ``cancel_reminders``) with a step
placed between ``decide`` and ``remind``, so they test the storing and firing whatever the action.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from aiohttp import web
from sqlalchemy import update

from seamline.bots.app import SEAMLINE, build, create_app
from seamline.bots.dialogue import Reminder
from seamline.bots.dialogue.reminders import DROPPED, KILLED, SENT, Due, Scheduler, SqlReminders
from seamline.shared.message import Message, utcnow
from seamline.shared.storage.database import create_engine
from seamline.shared.storage.models import CustomerRow, ReminderRow
from seamline.shared.storage.sql import SqlChatStore

from tests.support import Recorder, eventually

RETAIL_ACTIONS = "seamline.config.templates.retail.actions"


class Plays:
    """Between ``decide`` and ``remind``: the next turn's decision also schedules / cancels these, as an
    action returning ReminderScheduled / ReminderCancelled would."""

    name = "plays_reminder_events"

    def __init__(self) -> None:
        self.schedule: tuple[Reminder, ...] = ()
        self.cancel: tuple[str, ...] = ()

    async def __call__(self, turn, call_next) -> None:
        if turn.decision is not None and (self.schedule or self.cancel):
            turn.decision = replace(turn.decision, reminders=self.schedule, cancel_reminders=self.cancel)
            self.schedule, self.cancel = (), ()
        await call_next(turn)


@pytest.fixture
async def seamline(settings, understanding):
    seamline = await build(settings, understanding=understanding)
    yield seamline
    await seamline.close()


@pytest.fixture
def plays(seamline) -> Plays:
    step = Plays()
    seamline.pipeline.add_step(step, after="decide")
    return step


def web_message(text: str, sender: str = "visitor-1") -> Message:
    return Message(channel="web", address=sender, sender=sender, text=text)


def soon(name: str, seconds: float = 0.0, *, kill: bool = True, intent: str = "EXTERNAL_reminder") -> Reminder:
    return Reminder(name, intent, utcnow() + timedelta(seconds=seconds), kill_on_user_message=kill)


async def test_a_reminder_an_action_scheduled_fires_after_a_restart_on_the_channel_the_customer_is_on_now(
    settings, understanding
):
    settings = replace(settings, actions_module=RETAIL_ACTIONS)
    first = await build(settings, understanding=understanding)
    web_chat = Recorder("web")
    first.pipeline.register(web_chat)
    handled = await first.pipeline.handle(web_message("remind me tomorrow"))
    customer = handled.inbound.customer_id
    assert "remind you here tomorrow" in web_chat.texts("visitor-1")[-1]
    (reminder,) = await first.pipeline.reminders.pending(customer)
    assert reminder.intent == "EXTERNAL_reminder" and timedelta(hours=23) < reminder.at - utcnow() <= timedelta(
        hours=24
    )
    # The same customer is on Telegram now (a linked identity) and says thanks there: this reminder
    # asked not to be cancelled by a message.
    await first.store.add_identity(customer, "telegram", "555", "555")
    first.pipeline.register(Recorder("telegram"))
    await first.pipeline.handle(Message(channel="telegram", address="555", sender="555", text="thanks"))
    await first.close()
    # Tomorrow came while the server was down.
    async with create_engine(settings.database_url).begin() as conn:
        await conn.execute(update(ReminderRow).values(due_at=utcnow() - timedelta(minutes=5)))

    app = await create_app(settings, understanding=understanding)
    telegram, web_again = Recorder("telegram"), Recorder("web")
    app[SEAMLINE].pipeline.register(telegram)
    app[SEAMLINE].pipeline.register(web_again)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()  # the app's lifetime starts: the scheduler looks at once
    try:

        async def reminded():
            """the reminder reached the customer on Telegram"""
            return telegram.texts("555")

        (text,) = await eventually(reminded)
        assert "You asked me to remind you" in text and web_again.sent == []
        history = await app[SEAMLINE].store.history(customer)
        assert history[-1].text == text and (history[-1].channel, history[-1].role) == ("telegram", "bot")
        assert await app[SEAMLINE].pipeline.reminders.outcomes(customer) == {"remind_tomorrow": SENT}
    finally:
        await runner.cleanup()


async def test_a_message_of_the_customer_cancels_the_reminders_that_ask_for_it(seamline, plays):
    seamline.pipeline.register(Recorder("web"))
    plays.schedule = (soon("nudge", 3600), soon("keep", 3600, kill=False))
    handled = await seamline.pipeline.handle(web_message("hello"))
    customer = handled.inbound.customer_id
    assert [r.name for r in await seamline.pipeline.reminders.pending(customer)] == ["nudge", "keep"]
    await seamline.pipeline.handle(web_message("what are your opening hours?"))
    assert [r.name for r in await seamline.pipeline.reminders.pending(customer)] == ["keep"]


async def test_a_reminder_scheduled_in_the_turn_of_a_message_is_not_cancelled_by_that_message(seamline, plays):
    seamline.pipeline.register(Recorder("web"))
    await seamline.pipeline.handle(web_message("hello"))
    plays.schedule = (soon("nudge", 3600),)  # any earlier ones are gone; this one stands
    handled = await seamline.pipeline.handle(web_message("hello again"))
    assert [r.name for r in await seamline.pipeline.reminders.pending(handled.inbound.customer_id)] == ["nudge"]


async def test_a_message_another_process_took_cancels_the_reminder_when_it_comes_due(seamline, plays):
    """This process does not know the customer has a reminder (another one scheduled it): the check at
    fire time finds their message and does not fire it."""
    web_chat = Recorder("web")
    seamline.pipeline.register(web_chat)
    handled = await seamline.pipeline.handle(web_message("hello"))
    customer = handled.inbound.customer_id
    other = SqlReminders(store=seamline.store)  # another process's
    await other.update(customer, schedule=[soon("nudge", 3600)])
    await seamline.pipeline.handle(web_message("thanks"))
    assert [r.name for r in await other.pending(customer)] == ["nudge"]  # this process did not know
    said = len(web_chat.sent)
    await Scheduler(reminders=other, fire=_never).fire_due(utcnow() + timedelta(hours=2))
    assert await other.outcomes(customer) == {"nudge": KILLED} and len(web_chat.sent) == said


async def _never(due: Due) -> bool:
    raise AssertionError(f"{due.name} must not fire")


async def test_cancelled_by_name_or_all(seamline, plays):
    seamline.pipeline.register(Recorder("web"))
    plays.schedule = (soon("a", 3600, kill=False), soon("b", 3600, kill=False), soon("c", 3600, kill=False))
    handled = await seamline.pipeline.handle(web_message("hello"))
    customer = handled.inbound.customer_id
    plays.cancel = ("b",)
    await seamline.pipeline.handle(web_message("hello"))
    assert [r.name for r in await seamline.pipeline.reminders.pending(customer)] == ["a", "c"]
    plays.cancel, plays.schedule = ("*",), (soon("d", 3600, kill=False),)  # cancel all, then a new one
    await seamline.pipeline.handle(web_message("hello"))
    assert [r.name for r in await seamline.pipeline.reminders.pending(customer)] == ["d"]


async def test_the_same_name_replaces_the_earlier_reminder(seamline, plays):
    seamline.pipeline.register(Recorder("web"))
    plays.schedule = (soon("call", 3600, kill=False),)
    handled = await seamline.pipeline.handle(web_message("hello"))
    plays.schedule = (soon("call", 7200, kill=False),)
    await seamline.pipeline.handle(web_message("hello"))
    (reminder,) = await seamline.pipeline.reminders.pending(handled.inbound.customer_id)
    assert reminder.at - utcnow() > timedelta(seconds=3600)


async def test_erasing_the_customer_erases_their_reminders(seamline, plays):
    seamline.pipeline.register(Recorder("web"))
    plays.schedule = (soon("call", 3600, kill=False),)
    handled = await seamline.pipeline.handle(web_message("hello"))
    customer = handled.inbound.customer_id
    await seamline.customers.erase(customer, by="dpo@test")
    assert await seamline.pipeline.reminders.pending(customer) == []


async def test_a_due_reminder_is_answered_by_the_dialogue_and_kept_in_the_history(seamline, plays):
    web_chat = Recorder("web")
    seamline.pipeline.register(web_chat)
    plays.schedule = (soon("r", 0, kill=False),)
    handled = await seamline.pipeline.handle(web_message("hello"))
    customer = handled.inbound.customer_id
    scheduler = Scheduler(reminders=seamline.pipeline.reminders, fire=_firing(seamline))
    assert await scheduler.fire_due() == 1
    assert "remind you" in web_chat.texts("visitor-1")[-1]
    assert (await seamline.store.history(customer))[-1].text == web_chat.texts("visitor-1")[-1]
    assert await scheduler.fire_due() == 0  # once


async def test_a_reminder_is_not_fired_while_people_hold_the_conversation(seamline, plays):
    web_chat = Recorder("web")
    seamline.pipeline.register(web_chat)
    plays.schedule = (soon("r", 0, kill=False),)
    handled = await seamline.pipeline.handle(web_message("hello"))
    await seamline.pipeline.handle(web_message("I want to talk to a human"))
    said = len(web_chat.sent)
    scheduler = Scheduler(reminders=seamline.pipeline.reminders, fire=_firing(seamline))
    assert await scheduler.fire_due() == 1
    assert await seamline.pipeline.reminders.outcomes(handled.inbound.customer_id) == {"r": DROPPED}
    assert len(web_chat.sent) == said


def _firing(seamline):
    async def fire(due: Due) -> bool:
        pipeline = seamline.pipeline
        return await pipeline.trigger(due.customer_id, due.intent, due.entities, reminder=due.name) is not None

    return fire


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_two_schedulers_on_one_database_fire_each_reminder_once(database, request, seamline):
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else seamline.settings.database_url
    stores = [SqlChatStore(engine=create_engine(url)) for _ in range(2)]
    try:
        customer = await stores[0].resolve_customer("web", "v", "v")
        await SqlReminders(store=stores[0]).update(
            customer.id, schedule=[soon(f"r{n}", -1, kill=False) for n in range(30)]
        )
        fired: list[tuple[int, str]] = []

        def counting(which: int):
            async def fire(due: Due) -> bool:
                fired.append((which, due.name))
                await asyncio.sleep(0)  # let the other scheduler claim meanwhile
                return True

            return fire

        schedulers = [Scheduler(reminders=SqlReminders(store=s), fire=counting(n)) for n, s in enumerate(stores)]
        counts = await asyncio.gather(*(s.fire_due() for s in schedulers))
        assert sum(counts) == 30 and sorted(name for _, name in fired) == sorted(f"r{n}" for n in range(30))
    finally:
        for store in stores:
            await store.close()
            await store.engine.dispose()


async def test_a_reminder_in_the_customers_time_zone_is_due_at_that_moment(seamline, plays):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    seamline.pipeline.register(Recorder("web"))
    at = datetime(2030, 1, 2, 10, 0, tzinfo=ZoneInfo("Europe/Moscow"))
    plays.schedule = (Reminder("morning", "EXTERNAL_reminder", at, kill_on_user_message=False),)
    handled = await seamline.pipeline.handle(web_message("hello"))
    (reminder,) = await seamline.pipeline.reminders.pending(handled.inbound.customer_id)
    assert reminder.at == at  # 07:00 UTC, not 10:00 UTC
    scheduler = Scheduler(reminders=seamline.pipeline.reminders, fire=_firing(seamline))
    assert await scheduler.fire_due(at - timedelta(seconds=1)) == 0
    assert await scheduler.fire_due(at) == 1


@pytest.fixture(params=["sqlite", "postgresql"])
async def reminder_store(request, sqlite_url):
    """``Reminders`` on each database Seamline runs on (PostgreSQL from tests/services.sh)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else sqlite_url
    store = SqlChatStore(engine=create_engine(url))
    yield store, SqlReminders(store=store)
    await store.close()
    await store.engine.dispose()


class TestReminderStore:
    """The contract of ``Reminders``, on SQLite and PostgreSQL."""

    async def test_scheduled_replaced_cancelled_and_killed(self, reminder_store):
        store, reminders = reminder_store
        customer = (await store.resolve_customer("web", "v1", "v1")).id
        await reminders.update(customer, schedule=[soon("a", 60), soon("b", 120, kill=False), soon("c", 180)])
        await reminders.update(customer, schedule=[soon("a", 240)])  # replaced, and now the latest
        assert [r.name for r in await reminders.pending(customer)] == ["b", "c", "a"]
        await reminders.update(customer, cancel=["c"])
        assert [r.name for r in await reminders.pending(customer)] == ["b", "a"]
        await reminders.update(customer, customer_wrote=True)
        assert [r.name for r in await reminders.pending(customer)] == ["b"]
        await reminders.update(customer, cancel=["*"], schedule=[soon("d", 60)])
        assert [r.name for r in await reminders.pending(customer)] == ["d"]

    async def test_claimed_once_in_due_order_then_settled_and_purged(self, reminder_store):
        store, reminders = reminder_store
        customer = (await store.resolve_customer("web", "v2", "v2")).id
        await reminders.update(customer, schedule=[soon("later", -5), soon("first", -60), soon("future", 3600)])
        assert (await reminders.next_due()) is not None
        first, later = await reminders.claim(), await reminders.claim()
        assert (first.name, later.name) == ("first", "later") and await reminders.claim() is None
        assert first.customer_id == customer and first.intent == "EXTERNAL_reminder"
        await reminders.settle(first, SENT)
        assert await reminders.outcomes(customer) == {"first": SENT, "later": None}
        await reminders.update(customer, schedule=[soon("first", -1)])  # the same name again: due again
        assert (await reminders.claim()).name == "first"
        await reminders.purge(kept=timedelta(seconds=-60))
        assert await reminders.outcomes(customer) == {} and [r.name for r in await reminders.pending(customer)] == [
            "future"
        ]

    async def test_entities_and_a_linked_customer(self, reminder_store):
        store, reminders = reminder_store
        merged = (await store.resolve_customer("web", "v3", "v3")).id
        survivor = (await store.resolve_customer("telegram", "t3", "t3")).id
        at = utcnow() - timedelta(seconds=1)
        await reminders.update(merged, schedule=[Reminder("r", "EXTERNAL_x", at, (("order_number", "48213"),))])
        await store.run(update(CustomerRow).where(CustomerRow.id == merged).values(merged_into=survivor))
        due = await reminders.claim()
        assert (due.customer_id, due.entities) == (survivor, (("order_number", "48213"),))
        assert await reminders.wrote_since(survivor, at - timedelta(days=1)) is False


async def test_a_reminder_due_while_the_server_was_down_reaches_telegram_through_aiogram_after_a_restart(
    settings, make_server
):
    """The real Telegram adapter (aiogram against the fake Bot API): "remind me tomorrow", the server
    stops, tomorrow comes, a new server on the same database sends the reminder once it starts."""
    from tests.fakes.telegram import TOKEN, FakeTelegram

    async with FakeTelegram() as telegram:
        settings = replace(settings, actions_module=RETAIL_ACTIONS)
        channels = {"telegram": dict(token=TOKEN, api_base=telegram.url)}
        first = await make_server(settings, channels=channels)
        telegram.enqueue(telegram.update("message_text", chat_id=1001, text="remind me tomorrow"))
        (said,) = await telegram.wait_for("sendMessage", chat_id=1001)
        assert "remind you here tomorrow" in said.params["text"]
        await first.stop()
        async with create_engine(settings.database_url).begin() as conn:
            await conn.execute(update(ReminderRow).values(due_at=utcnow() - timedelta(hours=1)))

        await make_server(settings, channels=channels)
        _, reminded = await telegram.wait_for("sendMessage", chat_id=1001, count=2)
        assert "You asked me to remind you" in reminded.params["text"]
