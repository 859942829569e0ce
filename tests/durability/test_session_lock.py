"""A Redis session lock lost while its turn runs (real Redis): it is logged, naming the session,
and the stale turn does not overwrite what the lock's next holder saved. (That a holder working
longer than the timeout keeps its lock is in the store contract, tests/shared/test_session_store.py.)"""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.asyncio import Redis

from seamline.shared.session import Session
from seamline.shared.storage.redis_sessions import RedisSessionStore


@pytest.fixture
async def store(redis_url):
    # Locks here are lost by removing their key, not by the clock: a long timeout keeps the test
    # independent of how busy the machine is.
    store = RedisSessionStore(client=Redis.from_url(redis_url), lock_timeout=5, lock_wait=5)
    yield store
    await store.close()


async def test_a_lock_lost_behind_the_holders_back_is_logged_naming_the_session(store, redis_url, caplog):
    caplog.set_level(logging.WARNING, logger="seamline.shared.storage.redis_sessions")
    async with Redis.from_url(redis_url) as redis:
        async with store.lock("customer-7"):
            await redis.delete("seamline:lock:customer-7")  # expired, or taken by someone else
            await asyncio.sleep(0.05)
    lost = [r for r in caplog.records if r.levelno == logging.WARNING and "customer-7" in r.getMessage()]
    assert lost and "lost" in lost[0].getMessage()


async def test_a_turn_that_lost_its_lock_does_not_overwrite_the_next_holders_session(store, redis_url, caplog):
    caplog.set_level(logging.WARNING, logger="seamline.shared.storage.redis_sessions")
    await store.save(Session(customer_id="c1", conversation_id="v1"))
    async with Redis.from_url(redis_url) as redis:
        async with store.lock("c1"):
            stale = await store.load("c1")
            await redis.delete("seamline:lock:c1")  # the lock is gone: the next turn takes it
            await asyncio.wait_for(_next_turn(store), timeout=5)
            stale.active_form = "stale"
            await store.save(stale)
    kept = await store.load("c1")
    assert (kept.active_form, kept.fallbacks) == ("next turn", 1)
    assert any("c1" in r.getMessage() and "not saved" in r.getMessage() for r in caplog.records)


async def _next_turn(store) -> None:
    async with store.lock("c1"):
        session = await store.load("c1")
        session.active_form, session.fallbacks = "next turn", 1
        await store.save(session)


async def test_a_save_outside_any_lock_still_works(store):
    await store.save(Session(customer_id="c2", conversation_id="v2", fallbacks=3))
    assert (await store.load("c2")).fallbacks == 3
