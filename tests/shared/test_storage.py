"""One contract for the ChatStore (shared/history.py: messages, conversations, identities) on SQLite
and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from seamline.shared.history import StoredMessage, new_id
from seamline.shared.message import utcnow
from seamline.shared.storage.database import create_engine
from seamline.shared.storage.sql import SqlChatStore


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request):
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    store = SqlChatStore(engine=create_engine(url))
    yield store
    await store.close()
    await store.engine.dispose()


def message(customer, conversation, text, *, channel="web", role="customer", external_id=None, at=None):
    return StoredMessage(
        id=new_id(),
        conversation_id=conversation,
        customer_id=customer.id,
        channel=channel,
        direction="in" if role == "customer" else "out",
        role=role,
        text=text,
        external_id=external_id,
        created_at=at or utcnow(),
    )


class TestChatStoreContract:
    async def test_one_identity_resolves_to_the_same_customer_every_time(self, store):
        first = await store.resolve_customer("telegram", "42", "42", name="Anna")
        again = await store.resolve_customer("telegram", "42", "42")
        other = await store.resolve_customer("vk", "42", "42")
        assert first.id == again.id and first.name == "Anna"
        assert other.id != first.id  # same number on another channel is another person until proven

    async def test_racing_first_messages_create_one_customer(self, store):
        customers = await asyncio.gather(*(store.resolve_customer("web", "v-race", "v-race") for _ in range(8)))
        assert len({c.id for c in customers}) == 1
        assert [i.external_id for i in await store.identities(customers[0].id)] == ["v-race"]

    async def test_find_never_creates_a_customer(self, store):
        assert await store.find_customer("web", "stranger") is None
        assert await store.find_customer("web", "stranger") is None

    async def test_history_is_one_timeline_across_channels_oldest_first(self, store):
        customer = await store.resolve_customer("telegram", "7", "7")
        conversation = (await store.open_conversation(customer)).id
        start = utcnow()
        await store.append(message(customer, conversation, "hi from telegram", channel="telegram", at=start))
        await store.append(
            message(customer, conversation, "hello!", channel="telegram", role="bot", at=start + timedelta(seconds=1))
        )
        await store.append(message(customer, conversation, "now on the site", at=start + timedelta(seconds=2)))
        history = await store.history(customer.id)
        assert [(m.channel, m.role, m.text) for m in history] == [
            ("telegram", "customer", "hi from telegram"),
            ("telegram", "bot", "hello!"),
            ("web", "customer", "now on the site"),
        ]
        assert history[0].created_at.tzinfo is not None

    async def test_history_limit_keeps_the_newest(self, store):
        customer = await store.resolve_customer("web", "v1", "v1")
        conversation = (await store.open_conversation(customer)).id
        start = utcnow()
        for n in range(5):
            await store.append(message(customer, conversation, f"m{n}", at=start + timedelta(seconds=n)))
        assert [m.text for m in await store.history(customer.id, limit=2)] == ["m3", "m4"]

    async def test_a_customer_never_sees_another_customers_messages(self, store):
        alice = await store.resolve_customer("web", "alice", "alice")
        bob = await store.resolve_customer("web", "bob", "bob")
        await store.append(message(alice, (await store.open_conversation(alice)).id, "alice's secret"))
        assert await store.history(bob.id) == []

    async def test_a_repeated_platform_message_id_is_stored_once(self, store):
        customer = await store.resolve_customer("telegram", "9", "9")
        conversation = (await store.open_conversation(customer)).id
        first = message(customer, conversation, "once", channel="telegram", external_id="upd-1")
        await store.append(first)
        await store.append(message(customer, conversation, "once", channel="telegram", external_id="upd-1"))
        assert [m.text for m in await store.history(customer.id)] == ["once"]
        assert await store.recent_external_ids(customer.id) == []  # stored, not answered yet: not seen
        await store.annotate(first, "greet", 0.9, {"intent": "greet"})
        assert await store.recent_external_ids(customer.id) == ["telegram:upd-1"]

    async def test_concurrent_appends_of_many_customers_are_all_kept(self, store):
        customers = [await store.resolve_customer("web", f"v{n}", f"v{n}") for n in range(20)]
        conversations = [(await store.open_conversation(c)).id for c in customers]
        await asyncio.gather(
            *(store.append(message(c, v, f"from {c.id}")) for c, v in zip(customers, conversations, strict=True))
        )
        for customer in customers:
            assert [m.text for m in await store.history(customer.id)] == [f"from {customer.id}"]

    async def test_what_the_bot_understood_is_kept_with_the_message(self, store):
        customer = await store.resolve_customer("web", "v2", "v2")
        inbound = message(customer, (await store.open_conversation(customer)).id, "where is my order")
        await store.append(inbound)
        await store.annotate(inbound, "order_status", 0.93, {"intent": "order_status", "entities": []})
        (stored,) = await store.history(customer.id)
        assert (stored.intent, stored.confidence, stored.nlu["intent"]) == ("order_status", 0.93, "order_status")

    async def test_a_message_stored_again_is_understood_on_its_first_copy(self, store):
        customer = await store.resolve_customer("telegram", "v5", "v5")
        conversation = (await store.open_conversation(customer)).id
        first = message(customer, conversation, "hello", channel="telegram", external_id="u-5")
        await store.append(first)
        again = message(customer, conversation, "hello", channel="telegram", external_id="u-5")  # a new row id
        await store.append(again)
        await store.annotate(again, "greet", 0.99, {"intent": "greet"})
        (stored,) = await store.history(customer.id)
        assert (stored.id, stored.intent) == (first.id, "greet")

    async def test_the_open_conversation_is_reused_until_resolved(self, store):
        customer = await store.resolve_customer("web", "v3", "v3")
        first = await store.open_conversation(customer)
        customer = await store.resolve_customer("web", "v3", "v3")  # no longer new
        assert (await store.open_conversation(customer)).id == first.id
        await store.set_conversation_state(first.id, "queued", queue="support")
        assert (await store.conversation(first.id)).state == "queued"
        assert (await store.open_conversation(customer)).state == "queued"
        await store.set_conversation_state(first.id, "resolved")
        assert (await store.open_conversation(customer)).id != first.id

    async def test_events_are_recorded_in_order(self, store):
        customer = await store.resolve_customer("web", "v4", "v4")
        await store.record_event("handoff_requested", customer.id, None, {"reason": "asked"})
        await store.record_event("handoff_claimed", customer.id, None, {"agent": "a1"})
        assert [(e["kind"], e["data"]) for e in await store.events(customer.id)] == [
            ("handoff_requested", {"reason": "asked"}),
            ("handoff_claimed", {"agent": "a1"}),
        ]

    async def test_a_linked_identity_finds_its_customer_once_the_cache_is_told(self, store):
        customer = await store.resolve_customer("telegram", "l1", "l1")
        other = await store.resolve_customer("vk", "l1", "l1")
        await store.add_identity(customer.id, "site", "user-1", "user-1")
        assert (await store.fresh_customer("site", "user-1")).id == customer.id
        assert [i.channel for i in await store.identities(customer.id)] == ["telegram", "site"]
        store.forget_identities(await store.identities(other.id))  # a forgotten identity is read again
        assert (await store.find_customer("vk", "l1")).id == other.id

    async def test_a_resolved_conversation_is_followed_by_a_new_one(self, store):
        customer = await store.resolve_customer("web", "r1", "r1")
        first = await store.open_conversation(customer)
        await store.set_conversation_state(first.id, "resolved")
        after = await store.open_conversation_for(customer.id)
        assert after.id != first.id and (await store.conversation(after.id)).state == "bot"
        assert await store.conversation("no-such-id") is None

    async def test_a_turn_is_answered_once_it_is_annotated(self, store):
        customer = await store.resolve_customer("telegram", "a1", "a1")
        conversation = (await store.open_conversation(customer)).id
        since = utcnow() - timedelta(minutes=1)
        inbound = message(customer, conversation, "hello", channel="telegram", external_id="u-a1")
        await store.append(inbound)
        assert not await store.answered("telegram", "u-a1")
        assert [m.id for m in await store.unanswered("telegram", since)] == [inbound.id]
        reply = replace(
            message(customer, conversation, "hi!", channel="telegram", role="bot"),
            identity=inbound.identity,
            created_at=utcnow() + timedelta(seconds=1),
        )
        await store.annotate(inbound, "greet", 0.9, {"intent": "greet"}, (reply,))
        assert await store.answered("telegram", "u-a1")
        assert await store.unanswered("telegram", since) == []
        assert [m.text for m in await store.replies_to("telegram", "u-a1")] == ["hi!"]

    async def test_the_channel_a_customer_wrote_on_last_is_remembered(self, store):
        customer = await store.resolve_customer("telegram", "t1", "t1")
        await store.touch_customer(customer.id, "web")
        assert (await store.fresh_customer("telegram", "t1")).last_channel == "web"

    async def test_closing_commits_every_write_handed_in_first(self, store):
        customer = await store.resolve_customer("web", "c1", "c1")
        conversation = (await store.open_conversation(customer)).id
        writes = [asyncio.create_task(store.append(message(customer, conversation, f"m{n}"))) for n in range(50)]
        await asyncio.sleep(0)  # handed in: queued, a batch under way
        await store.close()
        await asyncio.wait_for(asyncio.gather(*writes), 10)  # none left waiting (a batch cancelled mid-commit was)
        assert len(await store.history(customer.id)) == 50


async def test_a_broken_database_is_a_store_error(tmp_path):
    from seamline.shared.errors import StoreError

    store = SqlChatStore(engine=create_engine(f"sqlite+aiosqlite:///{tmp_path}/empty.db"))  # never migrated
    with pytest.raises(StoreError, match="could not resolve the web customer"):
        await store.resolve_customer("web", "v", "v")
    await store.engine.dispose()


async def test_an_identity_can_be_marked_unreachable(sqlite_url):
    store = SqlChatStore(engine=create_engine(sqlite_url))
    customer = await store.resolve_customer("telegram", "55", "55")
    await store.set_reachable("telegram", "55", False)
    assert [i.reachable for i in await store.identities(customer.id)] == [False]
    await store.close()
    await store.engine.dispose()
