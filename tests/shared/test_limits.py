"""The Limiter contract, over every backend: budgets are reserved, slide, and are shared."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from seamline.shared.limits import MemoryLimiter, RedisLimiter, take_all
from seamline.shared.net import client_address, parse_networks


@pytest.fixture(params=["memory", "redis"])
async def limiter(request):
    if request.param == "memory":
        made = MemoryLimiter()
    else:
        url = os.environ.get("SEAMLINE_TEST_REDIS_URL")
        if not url:
            if os.environ.get("SEAMLINE_REQUIRE_SERVICES"):
                pytest.fail("SEAMLINE_TEST_REDIS_URL is not set")
            pytest.skip("no Redis: run through tests/services.sh")
        from redis.asyncio import Redis

        made = RedisLimiter(client=Redis.from_url(url), prefix=f"test-{uuid.uuid4().hex}:")
    yield made
    await made.close()


async def test_a_budget_refuses_past_its_limit_and_says_how_long(limiter):
    assert [await limiter.take("k", limit=3, window=60) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await limiter.take("k", limit=3, window=60)
    assert 50 < wait <= 60
    assert await limiter.used("k", window=60) == 3  # a refused take takes nothing


async def test_parallel_takes_never_exceed_the_limit(limiter):
    results = await asyncio.gather(*(limiter.take("burst", limit=5, window=60) for _ in range(60)))
    assert sum(1 for wait in results if wait == 0.0) == 5


async def test_the_window_slides(limiter):
    assert await limiter.take("slide", limit=1, window=0.2) == 0.0
    assert await limiter.take("slide", limit=1, window=0.2) > 0
    await asyncio.sleep(0.3)
    assert await limiter.take("slide", limit=1, window=0.2) == 0.0


async def test_peek_and_clear(limiter):
    await limiter.take("p", limit=1, window=60)
    assert await limiter.peek("p", limit=1, window=60) > 0
    assert await limiter.peek("p", limit=2, window=60) == 0.0
    await limiter.clear("p")
    assert await limiter.used("p", window=60) == 0


async def test_take_all_reports_the_longest_wait(limiter):
    await limiter.take("a", limit=1, window=30)
    assert await take_all(limiter, [("a", 1, 30), ("b", 5, 30)]) > 0
    assert await limiter.used("b", window=30) == 1


async def test_redis_budgets_are_shared_between_clients():
    url = os.environ.get("SEAMLINE_TEST_REDIS_URL")
    if not url:
        pytest.skip("no Redis")
    from redis.asyncio import Redis

    prefix = f"test-{uuid.uuid4().hex}:"
    one, two = (
        RedisLimiter(client=Redis.from_url(url), prefix=prefix),
        RedisLimiter(client=Redis.from_url(url), prefix=prefix),
    )
    try:
        assert await one.take("shared", limit=2, window=60) == 0.0
        assert await two.take("shared", limit=2, window=60) == 0.0
        assert await one.take("shared", limit=2, window=60) > 0
    finally:
        await one.close()
        await two.close()


def test_forwarded_for_is_believed_only_from_a_trusted_proxy():
    proxies = parse_networks(["127.0.0.1", "10.0.0.0/8"])
    assert client_address("203.0.113.9", "1.2.3.4", proxies) == "203.0.113.9"  # a stranger's claim
    assert client_address("127.0.0.1", "198.51.100.7", proxies) == "198.51.100.7"
    # the client may prepend anything; the rightmost untrusted hop is who reached the proxy
    assert client_address("127.0.0.1", "6.6.6.6, 198.51.100.7, 10.1.2.3", proxies) == "198.51.100.7"
    assert client_address("127.0.0.1", "not-an-ip", proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", "198.51.100.7", ()) == "127.0.0.1"
    assert client_address(None, None) == "unknown"
