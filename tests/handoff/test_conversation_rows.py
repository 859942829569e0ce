"""One contract for handoff's conversation rows (HandoffStore, HandoffFigures) on SQLite and on a
real PostgreSQL: what the queue, the consoles and the wait estimates read back after each move."""

from __future__ import annotations

from datetime import timedelta

import pytest

from seamline.handoff.agents import AgentStore
from seamline.handoff.storage import ConversationQuery, ConversationRows, Move, SqlConversationRows
from seamline.shared.history import StoredMessage, new_id
from seamline.shared.message import utcnow
from seamline.shared.storage.database import create_engine
from seamline.shared.storage.sql import SqlChatStore


@pytest.fixture(params=["sqlite", "postgresql"])
async def chat(request):
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    store = SqlChatStore(engine=create_engine(url))
    yield store
    await store.close()
    await store.engine.dispose()


@pytest.fixture
def rows(chat) -> ConversationRows:
    return SqlConversationRows(chat)


async def conversation(chat, sender: str) -> tuple[str, str]:
    customer = await chat.resolve_customer("telegram", sender, sender)
    return customer.id, (await chat.open_conversation(customer)).id


async def queued(rows, conversation_id: str, queue: str = "support", *, at=None) -> None:
    at = at or utcnow()
    await rows.move(conversation_id, Move("queued", queue, None, at, escalation={"reason": "asked"}, queued_at=at))


class TestHandoffStoreContract:
    async def test_an_unknown_conversation_is_none(self, rows):
        assert await rows.get("no-such-id") is None

    async def test_a_move_reads_back_and_keeps_the_escalation_it_does_not_change(self, chat, rows):
        _, cid = await conversation(chat, "1")
        await queued(rows, cid, "billing")
        await rows.move(cid, Move("with_agent", "billing", "agent-1", utcnow(), assigned=True))
        info = await rows.get(cid)
        assert (info.state, info.queue, info.agent_id) == ("with_agent", "billing", "agent-1")
        assert info.escalation == {"reason": "asked"} and info.queued_at is not None
        assert info.queued_at.tzinfo is not None

    async def test_waiting_conversations_are_listed_in_the_order_they_queued(self, chat, rows):
        start = utcnow()
        ids = [(await conversation(chat, s))[1] for s in ("a", "b", "c")]
        for n, cid in zip((2, 0, 1), ids, strict=True):
            await queued(rows, cid, at=start + timedelta(seconds=n))
        found = await rows.find(ConversationQuery(state="queued"))
        assert [c.id for c in found] == [ids[1], ids[2], ids[0]]
        assert [c.id for c in await rows.find(ConversationQuery(state="queued", limit=1, offset=1))] == [ids[2]]

    async def test_a_reader_sees_what_they_hold_and_what_waits_in_their_skills(self, chat, rows):
        _, mine = await conversation(chat, "m")
        _, billing = await conversation(chat, "b")
        _, sales = await conversation(chat, "s")
        _, unqueued = await conversation(chat, "u")
        await rows.move(mine, Move("with_agent", "sales", "me", utcnow()))
        await queued(rows, billing, "billing")
        await queued(rows, sales, "sales")
        await rows.move(unqueued, Move("queued", None, None, utcnow(), queued_at=utcnow()))
        seen = {c.id for c in await rows.find(ConversationQuery(reader="me", skills=("billing",)))}
        assert seen == {mine, billing}
        seen = {c.id for c in await rows.find(ConversationQuery(reader="me", skills=("billing",), unqueued=True))}
        assert seen == {mine, billing, unqueued}

    async def test_placements_name_every_queue_and_holder_of_a_customer(self, chat, rows):
        customer_id, cid = await conversation(chat, "p")
        await rows.move(cid, Move("with_agent", "billing", "agent-7", utcnow()))
        assert await rows.placements(customer_id) == [("billing", "agent-7")]

    async def test_a_conversation_held_by_a_removed_agent_is_orphaned(self, chat, rows):
        agent = await AgentStore(chat).add("kept@example.com", name="Kept", password="a long enough secret", queues=[])
        _, held = await conversation(chat, "h")
        _, orphan = await conversation(chat, "o")
        await rows.move(held, Move("with_agent", "support", agent.id, utcnow()))
        await rows.move(orphan, Move("with_agent", "support", "gone-agent", utcnow()))
        assert [c.id for c in await rows.orphaned()] == [orphan]

    async def test_the_position_told_is_forgotten_by_the_next_move(self, chat, rows):
        _, cid = await conversation(chat, "t")
        await queued(rows, cid)
        await rows.set_position_told(cid, 3)
        assert (await rows.get(cid)).position_told == 3
        await rows.move(cid, Move("with_agent", "support", "a", utcnow()))
        assert (await rows.get(cid)).position_told is None

    async def test_a_callback_number_is_kept_with_the_escalation(self, chat, rows):
        _, cid = await conversation(chat, "cb")
        await queued(rows, cid)
        await rows.set_escalation(cid, {"reason": "asked", "callback": "+4915112345678"})
        assert (await rows.get(cid)).escalation["callback"] == "+4915112345678"

    async def test_notes_are_the_conversations_events_oldest_first(self, chat, rows):
        customer_id, cid = await conversation(chat, "n")
        await chat.record_event("handoff", customer_id, cid, {"to": "queued"})
        await chat.record_event("note", customer_id, cid, {"text": "call them"})
        await chat.record_event("note", customer_id, "another", {"text": "not this one"})
        notes = await rows.notes(cid)
        assert [(n["kind"], n["data"]) for n in notes] == [
            ("handoff", {"to": "queued"}),
            ("note", {"text": "call them"}),
        ]


class TestHandoffFiguresContract:
    async def test_counts_per_queue_and_state(self, chat, rows):
        for sender, queue in (("1", "billing"), ("2", "billing"), ("3", "sales")):
            await queued(rows, (await conversation(chat, sender))[1], queue)
        _, held = await conversation(chat, "4")
        await rows.move(held, Move("with_agent", "sales", "a", utcnow()))
        assert await rows.counts(("queued", "with_agent")) == {
            ("billing", "queued"): 2,
            ("sales", "queued"): 1,
            ("sales", "with_agent"): 1,
        }

    async def test_loads_count_what_each_agent_holds(self, chat, rows):
        for sender, state in (("1", "with_agent"), ("2", "transferred"), ("3", "resolved")):
            await rows.move((await conversation(chat, sender))[1], Move(state, "support", "busy", utcnow()))
        assert await rows.loads(["busy", "idle"]) == {"busy": 2}

    async def test_handling_minutes_run_from_taking_to_resolving(self, chat, rows):
        now = utcnow()
        _, cid = await conversation(chat, "h")
        await rows.move(cid, Move("with_agent", "support", "a", now - timedelta(minutes=12), assigned=True))
        await rows.move(cid, Move("resolved", "support", "a", now))
        _, old = await conversation(chat, "o")
        await rows.move(old, Move("with_agent", "support", "a", now - timedelta(days=9), assigned=True))
        await rows.move(old, Move("resolved", "support", "a", now - timedelta(days=8)))
        minutes = await rows.handling_minutes("support", now - timedelta(days=7), 50)
        assert [round(m) for m in minutes] == [12]

    async def test_the_last_customer_message_ignores_what_was_said_to_them(self, chat, rows):
        customer_id, cid = await conversation(chat, "w")
        assert await rows.last_customer_message(cid) is None
        start = utcnow()
        for n, (direction, role) in enumerate((("in", "customer"), ("out", "bot"))):
            await chat.append(
                StoredMessage(
                    id=new_id(),
                    conversation_id=cid,
                    customer_id=customer_id,
                    channel="telegram",
                    direction=direction,
                    role=role,
                    text="x",
                    created_at=start + timedelta(minutes=n),
                )
            )
        assert await rows.last_customer_message(cid) == start
