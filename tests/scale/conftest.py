"""Fixtures starting real workers on PostgreSQL and Redis, with the Telegram and VK fakes.

``two_workers``: one pair of workers per test module (starting a worker costs seconds of CPU on a
shared machine; tests on it use their own chats, so they do not see each other). ``cluster``: a
factory for a test that needs its own workers (it kills one). What the workers logged during a test
is printed after it, so a failing test shows it (pytest shows a passing test's output only when asked).
"""

from __future__ import annotations

import pytest

from tests.conftest import _service, fresh_postgres
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVk
from tests.scale.cluster import Cluster


@pytest.fixture(scope="module")
def module_postgres_url():
    """A fresh, migrated PostgreSQL database for one test module (as ``postgres_url`` for one test)."""
    yield from fresh_postgres()


@pytest.fixture(scope="module")
def module_redis_url() -> str:
    from redis import Redis

    url = _service("SEAMLINE_TEST_REDIS_URL")
    with Redis.from_url(url) as client:
        client.flushdb()
    return url


@pytest.fixture(scope="module")
async def two_workers(tmp_path_factory, models_dir, config_dir, module_postgres_url, module_redis_url):
    async with FakeTelegram() as telegram, FakeVk() as vk:
        workers = Cluster(
            tmp_path_factory.mktemp("two-workers"),
            models_dir=models_dir,
            config_dir=config_dir,
            database_url=module_postgres_url,
            redis_url=module_redis_url,
            telegram=telegram,
            vk=vk,
            count=2,
        )
        try:
            yield await workers.start()
        finally:
            await workers.stop()


@pytest.fixture
def workers(two_workers):
    """The module's two workers; what they log during the test is printed after it."""
    marks = two_workers.log_marks()
    yield two_workers
    print(two_workers.logs(since=marks))
    assert two_workers.tracebacks(since=marks) == [], "a worker logged a traceback during the test"


@pytest.fixture
async def cluster(tmp_path, models_dir, config_dir, postgres_url, redis_url):
    """``await cluster(count=2, **env)`` -> a started Cluster of this test's own; ``.telegram``, ``.vk``: its fakes."""
    started: list[Cluster] = []
    async with FakeTelegram() as telegram, FakeVk() as vk:

        async def make(count: int = 2, **extra: str) -> Cluster:
            made = Cluster(
                tmp_path / f"cluster{len(started)}",
                models_dir=models_dir,
                config_dir=config_dir,
                database_url=postgres_url,
                redis_url=redis_url,
                telegram=telegram,
                vk=vk,
                count=count,
                **extra,
            )
            started.append(made)
            return await made.start()

        try:
            yield make
        finally:
            for made in started:
                await made.stop()
                print(made.logs())
