"""The durable outbox: replies committed with their turn, sent after the session lock, in order per
customer whichever worker sends them, taken over from a dead worker, retried then given up, never
sent twice once marked sent. The contract runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, update

from seamline.bots.app import build
from seamline.bots.outbox import Dispatcher
from seamline.bots.retry import RetryPolicy
from seamline.shared.errors import ChannelError
from seamline.shared.history import StoredMessage, new_id
from seamline.shared.message import Message, Reply, utcnow
from seamline.shared.storage.models import OutboxRow
from seamline.shared.storage.outbox import SqlOutbox
from seamline.shared.storage.sql import SqlChatStore

from tests.support import Recorder

NO_WAIT = RetryPolicy(base=0.0, cap=0.0)  # a failed send is due again at once


async def customer(store: SqlChatStore, sender: str) -> str:
    return (await store.resolve_customer("telegram", sender, sender)).id


async def commit(outbox: SqlOutbox, store: SqlChatStore, customer_id: str, *texts: str) -> list[str]:
    """Replies to the customer's Telegram chat committed as a turn would; their ids, in order."""
    now = utcnow()
    stored = [
        StoredMessage(
            id=new_id(),
            conversation_id="c",
            customer_id=customer_id,
            channel="telegram",
            direction="out",
            role="bot",
            text=text,
            created_at=now + timedelta(microseconds=n),
        )
        for n, text in enumerate(texts)
    ]
    await store.write_all(
        outbox.rows(stored, [Reply(t) for t in texts], channel="telegram", address=f"chat-{customer_id}")
    )
    return [s.id for s in stored]


async def expire_leases(store: SqlChatStore) -> None:
    """As if every worker holding a row had been killed a minute ago."""
    await store.run(update(OutboxRow).values(claimed_until=utcnow() - timedelta(minutes=1)))


class Failing(Recorder):
    def __init__(self, channel: str = "telegram") -> None:
        super().__init__(channel)
        self.tries = 0

    async def send(self, address, reply):
        self.tries += 1
        raise ChannelError("telegram answered 502")


class TestOutboxContract:
    async def test_the_committing_worker_sends_its_rows_in_order(self, stores):
        store = stores[0]
        outbox, telegram = SqlOutbox(store=store, worker="a"), Recorder("telegram")
        who = await customer(store, "1")
        ids = await commit(outbox, store, who, "one", "two", "three")
        dispatcher = Dispatcher(outbox=outbox, store=store, adapters={"telegram": telegram})
        assert await dispatcher.deliver(ids) == ["telegram"] * 3
        assert telegram.texts(f"chat-{who}") == ["one", "two", "three"]
        assert [r.id for _, r in telegram.sent] == ids  # the idempotency key is the stored message's id
        assert await outbox.backlog() == 0

    async def test_rows_behind_another_workers_undelivered_row_wait_for_it(self, stores):
        store = stores[0]
        a, b = SqlOutbox(store=store, worker="a"), SqlOutbox(store=store, worker="b")
        who = await customer(store, "1")
        first = await commit(a, store, who, "first")
        later = await commit(b, store, who, "later")
        assert [e.id for e in await a.mine(first)] == first
        assert await b.mine(later) == []  # not b's to send before a's row went out
        assert await b.claim() == []  # nor anyone's: a holds the head
        telegram = Recorder("telegram")
        await Dispatcher(outbox=a, store=store, adapters={"telegram": telegram}).deliver(first)
        taken = await b.claim()
        assert [e.id for e in taken] == later

    async def test_two_claimers_never_take_the_same_row_nor_a_later_row_before_its_head(self, stores):
        dead = [SqlOutbox(store=stores[0], worker="dead")]
        heads, everything = set(), set()
        for n in range(6):
            ids = await commit(dead[0], stores[0], await customer(stores[0], str(n)), "a", "b", "c")
            heads.add(ids[0])
            everything.update(ids)
        await expire_leases(stores[0])
        one, two = SqlOutbox(store=stores[0], worker="one"), SqlOutbox(store=stores[1], worker="two")
        got = await asyncio.gather(one.claim(limit=4), two.claim(limit=4), one.claim(limit=4), two.claim(limit=4))
        claimed = [e.id for batch in got for e in batch]
        assert len(claimed) == len(set(claimed))  # never one row twice
        assert set(claimed) == heads  # every customer's first row, and only that

    async def test_a_dead_workers_rows_are_taken_over_once_its_lease_ran_out(self, stores):
        dead = SqlOutbox(store=stores[0], worker="dead")
        who = await customer(stores[0], "1")
        ids = await commit(dead, stores[0], who, "one", "two")
        alive = SqlOutbox(store=stores[1], worker="alive")
        telegram = Recorder("telegram")
        dispatcher = Dispatcher(outbox=alive, store=stores[1], adapters={"telegram": telegram})
        assert await dispatcher.sweep() == 0  # the lease still holds
        await expire_leases(stores[0])
        assert await dispatcher.sweep() == 1  # the head; its lane continues with the next row
        await dispatcher.drain(10)
        assert [r.id for _, r in telegram.sent] == ids

    async def test_a_failing_send_is_retried_with_backoff_then_given_up_and_the_next_row_goes(self, stores):
        store = stores[0]
        outbox, failing = SqlOutbox(store=store, worker="a"), Failing()
        who = await customer(store, "1")
        ids = await commit(outbox, store, who, "doomed", "next")
        backing_off = Dispatcher(outbox=outbox, store=store, adapters={"telegram": failing}, max_attempts=3)
        await backing_off.deliver(ids)
        assert failing.tries == 1 and await backing_off.sweep() == 0  # not due yet: it backs off
        await store.run(update(OutboxRow).values(next_attempt_at=utcnow()))
        dispatcher = Dispatcher(
            outbox=outbox, store=store, adapters={"telegram": failing}, max_attempts=3, backoff=NO_WAIT
        )
        for _ in range(2):
            await dispatcher.sweep()
            await dispatcher.drain(10)
        async with store.engine.connect() as conn:
            rows = {r.id: r for r in (await conn.execute(select(OutboxRow))).all()}
        doomed = rows[ids[0]]
        assert failing.tries == 4  # 1 + 3: "next" was tried too once the head was given up
        assert doomed.attempts == 3 and doomed.failed_at is not None and "502" in doomed.error
        assert rows[ids[1]].attempts == 1 and rows[ids[1]].failed_at is None  # backing off, its turn now
        assert await outbox.backlog() == 1

    async def test_a_row_marked_sent_is_never_sent_again(self, stores):
        store = stores[0]
        outbox, telegram = SqlOutbox(store=store, worker="a"), Recorder("telegram")
        ids = await commit(outbox, store, await customer(store, "1"), "once")
        dispatcher = Dispatcher(outbox=outbox, store=store, adapters={"telegram": telegram})
        await dispatcher.deliver(ids)
        await expire_leases(store)
        assert await dispatcher.deliver(ids) == [] and await dispatcher.sweep() == 0
        other = Dispatcher(outbox=SqlOutbox(store=stores[1], worker="b"), store=stores[1], adapters={})
        assert await other.sweep() == 0
        assert telegram.texts(f"chat-{await customer(store, '1')}") == ["once"]

    async def test_backlog_counts_what_is_neither_sent_nor_given_up(self, stores):
        store = stores[0]
        outbox = SqlOutbox(store=store, worker="a")
        ids = await commit(outbox, store, await customer(store, "1"), "a", "b", "c")
        assert await outbox.backlog() == 3
        await Dispatcher(outbox=outbox, store=store, adapters={"telegram": Recorder()}).deliver(ids[:1])
        assert await outbox.backlog() == 2

    async def test_an_agent_reply_committed_by_a_worker_that_died_is_sent_by_another(
        self, database_url, settings, understanding
    ):
        from dataclasses import replace

        settings = replace(settings, database_url=database_url)
        dying = await build(settings, understanding=understanding)
        survivor = await build(settings, understanding=understanding)
        try:
            telegram = Recorder("telegram")
            survivor.pipeline.register(telegram)
            dying.pipeline.register(Recorder("telegram"))
            handled = await dying.pipeline.handle(Message("telegram", "77", "77", "hello", external_id="1"))
            who = handled.inbound.customer_id
            reply = Reply("An agent here.")
            stored = StoredMessage(
                id=new_id(),
                conversation_id=handled.inbound.conversation_id,
                customer_id=who,
                channel="telegram",
                direction="out",
                role="agent",
                text=reply.text,
                created_at=utcnow(),
            )
            await dying.pipeline.keep(stored, reply)  # committed; the process dies before sending
            await expire_leases(survivor.store)
            await survivor.pipeline.dispatcher.sweep()
            await survivor.pipeline.dispatcher.drain(10)
            assert telegram.texts("77") == ["An agent here."]
            assert (await survivor.store.history(who))[-1].text == "An agent here."
        finally:
            await dying.close()
            await survivor.close()


class Blocking(Recorder):
    """A Telegram-like adapter whose first send hangs (a 429 waited out) until released."""

    def __init__(self) -> None:
        super().__init__("telegram")
        self.entered, self.release = asyncio.Event(), asyncio.Event()

    async def send(self, address, reply):
        if not self.entered.is_set():
            self.entered.set()
            await self.release.wait()
        await super().send(address, reply)


def telegram_message(text: str, update_id: int) -> Message:
    return Message("telegram", "100", "100", text, external_id=str(update_id))


async def test_a_send_that_hangs_does_not_hold_the_customers_lock(settings, understanding):
    seamline = await build(settings, understanding=understanding)
    try:
        adapter = Blocking()
        seamline.pipeline.register(adapter)
        first = asyncio.create_task(seamline.pipeline.handle(telegram_message("hello", 1)))
        await asyncio.wait_for(adapter.entered.wait(), 10)
        # The first reply is stuck in the channel; the next message's turn still commits.
        second = await asyncio.wait_for(seamline.pipeline.handle(telegram_message("hi", 2)), 10)
        history = await seamline.store.history(second.inbound.customer_id)
        assert [m.direction for m in history] == ["in", "out", "in", "out"] and adapter.sent == []
        adapter.release.set()
        await asyncio.wait_for(first, 10)
        assert [r.id for _, r in adapter.sent] == [m.id for m in history if m.direction == "out"]  # in order
    finally:
        await seamline.close()


async def test_a_redelivered_message_whose_turn_committed_before_the_session_was_saved_is_not_answered_again(
    settings, understanding
):
    seamline = await build(settings, understanding=understanding)
    try:
        adapter = Recorder("telegram")
        seamline.pipeline.register(adapter)
        handled = await seamline.pipeline.handle(telegram_message("hello", 5))
        session = await seamline.sessions.load(handled.inbound.customer_id)
        session.seen.clear()  # the crash came after the commit, before the session was saved
        await seamline.sessions.save(session)
        again = await seamline.pipeline.handle(telegram_message("hello", 5), redelivery=True)
        assert again.duplicate and len(adapter.sent) == 1
    finally:
        await seamline.close()
