"""One contract for every SessionStore: the in-process store and Redis (a real redis-server)."""

from __future__ import annotations

import asyncio

import pytest

from seamline.shared.session import SEEN_LIMIT, MemorySessionStore, Session


@pytest.fixture(params=["memory", "redis"])
async def store(request):
    if request.param == "memory":
        store = MemorySessionStore()
    else:
        from redis.asyncio import Redis

        from seamline.shared.storage.redis_sessions import RedisSessionStore

        # A short lock timeout (1 s): a holder working longer than it must still keep the lock.
        store = RedisSessionStore(client=Redis.from_url(request.getfixturevalue("redis_url")), lock_timeout=1.0)
    yield store
    await store.close()


class TestSessionStoreContract:
    async def test_a_saved_session_loads_back_with_its_state(self, store):
        session = Session(
            customer_id="c1",
            conversation_id="v1",
            language="ru",
            slots={"order_number": "12345"},
            active_form="order_status",
            fallbacks=1,
            handoff="queued",
            last_channel="telegram",
        )
        session.remember("web:x:1")
        await store.save(session)
        assert await store.load("c1") == session

    async def test_an_unknown_key_loads_as_none(self, store):
        assert await store.load("nobody") is None

    async def test_changes_to_a_loaded_session_do_not_leak_until_saved(self, store):
        await store.save(Session(customer_id="c1", conversation_id="v1"))
        loaded = await store.load("c1")
        loaded.slots["order_number"] = "777"
        assert (await store.load("c1")).slots == {}

    async def test_delete_forgets_the_session(self, store):
        await store.save(Session(customer_id="c1", conversation_id="v1"))
        await store.delete("c1")
        assert await store.load("c1") is None

    async def test_the_lock_serialises_two_writers_of_one_customer(self, store):
        await store.save(Session(customer_id="c1", conversation_id="v1"))

        async def bump() -> None:
            async with store.lock("c1"):
                session = await store.load("c1")
                await asyncio.sleep(0.02)  # another writer would interleave here without the lock
                session.fallbacks += 1
                await store.save(session)

        await asyncio.gather(*(bump() for _ in range(5)))
        assert (await store.load("c1")).fallbacks == 5

    async def test_a_holder_working_longer_than_the_lock_timeout_keeps_the_lock(self, store):
        order, entered = [], asyncio.Event()

        async def slow() -> None:  # a turn waiting on a platform's 429 (Redis lock timeout: 1 s)
            async with store.lock("c1"):
                order.append("first in")
                entered.set()
                await asyncio.sleep(2.5)
                order.append("first out")

        async def next_turn() -> None:
            await entered.wait()
            async with store.lock("c1"):
                order.append("second in")

        await asyncio.wait_for(asyncio.gather(slow(), next_turn()), timeout=15)
        assert order == ["first in", "first out", "second in"]

    async def test_locks_of_different_customers_do_not_wait_for_each_other(self, store):
        async with store.lock("c1"):
            await asyncio.wait_for(_enter(store, "c2"), timeout=5)


async def _enter(store, key: str) -> None:
    async with store.lock(key):
        pass


def test_a_session_remembers_a_bounded_number_of_message_ids():
    session = Session(customer_id="c1", conversation_id="v1")
    for n in range(SEEN_LIMIT + 50):
        session.remember(f"web:{n}")
    assert len(session.seen) == SEEN_LIMIT
    assert session.seen[-1] == f"web:{SEEN_LIMIT + 49}" and "web:0" not in session.seen


async def test_a_dead_redis_is_a_clear_store_error():
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from seamline.shared.errors import StoreError
    from seamline.shared.storage.redis_sessions import RedisSessionStore

    # no retries: redis-py's default backoff would spend seconds before the same error
    store = RedisSessionStore(
        client=Redis(host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    )
    with pytest.raises(StoreError, match="Redis failed loading session c1"):
        await store.load("c1")
    await store.close()
