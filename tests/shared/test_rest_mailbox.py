"""The REST channel's Mailbox and Answers contracts (bots/rest_mailbox.py), over both backends: a
sender's waiting replies come in order, bounded, expire, and are taken once even by concurrent polls;
an answer kept for a resend comes back as it was."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from seamline.bots.rest_mailbox import MemoryAnswers, MemoryMailbox, RedisAnswers, RedisMailbox
from seamline.shared.errors import StoreError

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.services)]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
async def make(backend, request):
    """Build a mailbox (``make("mailbox", size=…)``) or answers (``make("answers")``) of the backend;
    Redis ones share one prefix per test, so two of them are two workers on one Redis."""
    made = []
    prefix = f"test-{uuid.uuid4().hex}:"
    url = request.getfixturevalue("redis_url") if backend == "redis" else None

    def build(kind: str, **options):
        if backend == "memory":
            store = MemoryMailbox(**options) if kind == "mailbox" else MemoryAnswers(**options)
        else:
            from redis.asyncio import Redis

            client = Redis.from_url(url)
            if kind == "mailbox":
                store = RedisMailbox(client=client, prefix=prefix, **options)
            else:
                store = RedisAnswers(client=client, prefix=prefix, **options)
        made.append(store)
        return store

    yield build
    for store in made:
        await store.close()


def texts(items: list[dict]) -> list[str]:
    return [item["text"] for item in items]


async def test_waiting_replies_come_in_order_and_only_once(make):
    box = make("mailbox", size=10)
    await box.put("ann", [{"text": "1"}, {"text": "2"}])
    await box.put("ann", [{"text": "3", "buttons": [{"title": "Yes", "payload": "/yes"}]}])
    await box.put("bob", [{"text": "for bob"}])
    taken = await box.take("ann")
    assert texts(taken) == ["1", "2", "3"] and taken[2]["buttons"] == [{"title": "Yes", "payload": "/yes"}]
    assert await box.take("ann") == []
    assert texts(await box.take("bob")) == ["for bob"]


async def test_a_senders_box_is_bounded_and_the_oldest_go_first(make):
    box = make("mailbox", size=2)
    for n in range(3):
        await box.put("a", [{"text": str(n)}])
    assert texts(await box.take("a")) == ["1", "2"]


async def test_waiting_replies_expire(make):
    box = make("mailbox", size=5, ttl=0.2)
    await box.put("late", [{"text": "old"}])
    await asyncio.sleep(0.3)
    assert await box.take("late") == []


async def test_concurrent_polls_on_two_workers_get_each_reply_exactly_once(make):
    one, two = make("mailbox", size=500), make("mailbox", size=500)
    said = [f"reply {n}" for n in range(200)]

    async def speak() -> None:
        for n in range(0, len(said), 4):
            await one.put("racer", [{"text": text} for text in said[n : n + 4]])
            await asyncio.sleep(0)

    async def poll(box) -> list[str]:
        got: list[str] = []
        for _ in range(60):
            got += texts(await box.take("racer"))
            await asyncio.sleep(0)
        return got

    _, first, second = await asyncio.gather(speak(), poll(one), poll(two))
    rest = texts(await two.take("racer"))
    everything = first + second + rest
    assert sorted(everything) == sorted(said)  # none lost, none twice
    assert first == sorted(first, key=said.index) and second == sorted(second, key=said.index)  # each in order


async def test_a_unicode_reply_survives(make):
    box = make("mailbox", size=5)
    await box.put("ru", [{"text": "Ваш заказ в пути 📦"}, {"text": "lone \udc80 surrogate"}])
    assert texts(await box.take("ru")) == ["Ваш заказ в пути 📦", "lone \udc80 surrogate"]


async def test_an_answer_kept_for_a_resend_comes_back_as_it_was(make):
    one, two = make("answers"), make("answers")
    assert await one.get("rest-1") is None
    await one.keep("rest-1", [{"recipient_id": "a", "text": "hi"}])
    for answers in (one, two) if isinstance(one, RedisAnswers) else (one,):  # Redis: any worker
        assert await answers.get("rest-1") == [{"recipient_id": "a", "text": "hi"}]
    got = await one.get("rest-1")
    got.append({"text": "changed by a caller"})
    assert await one.get("rest-1") == [{"recipient_id": "a", "text": "hi"}]


async def test_memory_answers_keep_only_the_latest():
    answers = MemoryAnswers(size=2)
    for n in range(3):
        await answers.keep(str(n), [{"text": str(n)}])
    assert await answers.get("0") is None and await answers.get("2") == [{"text": "2"}]


async def test_memory_mailbox_keeps_a_bounded_number_of_senders():
    box = MemoryMailbox(size=2, senders=2)
    for sender in "abc":
        await box.put(sender, [{"text": sender}])
    assert await box.take("a") == [] and texts(await box.take("b")) == ["b"]


async def test_redis_down_is_a_store_error_not_a_crash():
    from redis.asyncio import Redis

    box = RedisMailbox(client=Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=1), size=5)
    answers = RedisAnswers(client=Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=1))
    try:
        with pytest.raises(StoreError):
            await box.put("a", [{"text": "x"}])
        with pytest.raises(StoreError):
            await box.take("a")
        with pytest.raises(StoreError):
            await answers.get("rest-1")
    finally:
        await box.close()
        await answers.close()
