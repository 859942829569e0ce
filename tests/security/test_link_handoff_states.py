"""Linking two customers never loses a conversation that people hold or wait for (issue 10, item 10)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from seamline.bots.app import build
from seamline.handoff import machine
from seamline.shared.handoff_states import MERGE_RANK, STATES
from seamline.shared.message import Message
from seamline.shared.storage.models import ConversationRow


def test_every_handoff_state_has_a_merge_rank_and_the_machine_uses_the_same_states():
    assert set(MERGE_RANK) == set(STATES)
    assert machine.STATES is STATES
    assert {state for pair in machine.TRANSITIONS for state in pair} <= set(STATES)


@pytest.fixture
async def seamline(settings, understanding):
    seamline = await build(settings, understanding=understanding)
    yield seamline
    await seamline.close()


async def _customer_in(seamline, channel: str, sender: str, state: str):
    await seamline.pipeline.handle(
        Message(channel=channel, address=sender, sender=sender, text="hello", external_id=f"{sender}-1")
    )
    customer = await seamline.store.find_customer(channel, sender)
    session = await seamline.sessions.load(customer.id)
    session.handoff = state
    await seamline.sessions.save(session)
    async with seamline.store.engine.begin() as conn:
        await conn.execute(
            update(ConversationRow).where(ConversationRow.id == session.conversation_id).values(state=state)
        )
    return customer, session.conversation_id


@pytest.mark.parametrize("held", ["transferred", "with_agent", "queued"])
async def test_a_conversation_held_by_people_survives_a_link_into_a_bot_conversation(seamline, held):
    waiting, conversation = await _customer_in(seamline, "telegram", "tg-held", held)
    issuer, _ = await _customer_in(seamline, "web", "web-bot", "bot")

    await seamline.linker.merge(issuer.id, waiting.id, method="code", by="test")

    session = await seamline.sessions.load(issuer.id)
    assert session.conversation_id == conversation and session.handoff == held
    async with seamline.store.engine.connect() as conn:
        state = (await conn.execute(select(ConversationRow.state).where(ConversationRow.id == conversation))).scalar()
    assert state == held  # still in the queue / with the person, not closed as "merged"
