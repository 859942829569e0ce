"""How a session is kept in Redis: small (an idle conversation under 4 KB), whole (every tracker
event with its full parse comes back), and readable across the upgrade that compressed it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from seamline.bots.dialogue.tracker import action_event, bot_event, user_event
from seamline.nlu.parse import Entity, Parse
from seamline.shared.message import Button, Message, Reply
from seamline.shared.session import Session
from seamline.shared.storage.redis_sessions import RedisSessionStore, decode, encode

INTENTS = ("order_status", "cancel_order", "change_address", "remind_me", "link_account")


def few_turns(customer: str = "c1") -> Session:
    """A session after four turns, shaped as the pipeline leaves it (full parses, buttons, a form)."""
    session = Session(customer_id=customer, conversation_id=f"v-{customer}", last_channel="web")
    start = datetime(2026, 12, 1, tzinfo=UTC)
    texts = ["hi", "where is my order", "48213", "how much is delivery"]
    for turn, text in enumerate(texts):
        ranking = tuple((name, 0.9999947340035334 / (n + 1) ** 7) for n, name in enumerate(INTENTS))
        entities = (Entity("order_number", "48213", "48213", 0, 5),) if text == "48213" else ()
        parse = Parse(INTENTS[turn % 5], ranking[0][1], ranking, entities, "en")
        message = Message("web", "visitor", "visitor", text, external_id=f"uZY8foFCs2svEqkUCMRsrw:m{turn}")
        reply = Reply(
            "We deliver by courier in 1-3 days, or you can collect your order from a pickup point.",
            (Button("Where is my order?", "/order_status"), Button("Talk to a person", "/human_agent")),
            ts=start + timedelta(seconds=turn),
        )
        session.record(user_event(parse, message), action_event("action_order_status"), bot_event(reply))
        session.remember(message.external_id or "")
    session.record({"event": "slot", "name": "order_number", "value": "48213"})
    session.slots["order_number"] = "48213"
    return session


def test_a_stored_session_comes_back_whole_with_cyrillic_and_odd_characters():
    session = few_turns()
    session.slots["name"] = "Иван \x00 \ud800"  # a lone surrogate a client sent survives too
    assert Session.from_dict(decode(encode(session.to_dict()))) == session


def test_a_new_customers_short_session_stays_plain_json_and_a_long_one_is_compressed():
    assert encode(Session(customer_id="c", conversation_id="v").to_dict()).startswith(b"{")
    session = few_turns()
    stored = encode(session.to_dict())
    assert not stored.startswith(b"{") and len(stored) * 2 < len(json.dumps(session.to_dict()))


@pytest.mark.services
async def test_an_idle_few_turn_session_takes_under_4_kb_of_redis_and_loads_whole(redis_url):
    store = RedisSessionStore(client=Redis.from_url(redis_url))
    try:
        session = few_turns()
        await store.save(session)
        # Redis's own figure for the key and its value (the key table's share comes on top: ~100 bytes)
        used = await store._redis.memory_usage("seamline:session:c1")
        assert used is not None and used < 3000
        loaded = await store.load("c1")
        assert loaded == session
        latest = loaded.events[-4]["parse_data"]  # the last user event: its whole parse, as Rasa's
        assert [r["name"] for r in latest["intent_ranking"]][:2] == ["remind_me", "order_status"]
        assert loaded.events[0]["parse_data"]["intent_ranking"][0]["name"] == "order_status"
    finally:
        await store.close()


@pytest.mark.services
async def test_a_session_written_before_the_upgrade_still_loads(redis_url):
    session = few_turns("old")
    session.slots["city"] = "Москва"
    async with Redis.from_url(redis_url) as client:  # the previous format: json.dumps, as text
        await client.set("seamline:session:old", json.dumps(session.to_dict()))
    store = RedisSessionStore(client=Redis.from_url(redis_url))
    try:
        loaded = await store.load("old")
        assert loaded == session
        loaded.fallbacks = 1
        await store.save(loaded)  # and is written in the new format from then on
        assert await store.load("old") == loaded
    finally:
        await store.close()
