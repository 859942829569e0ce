"""The ``cluster`` fixture: start K real workers on the test's PostgreSQL and Redis, with the fakes.

Every worker's log is printed at teardown, so a failing test shows what each worker said (pytest
shows a passing test's teardown output only when asked)."""

from __future__ import annotations

import pytest

from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVk
from tests.scale.cluster import Cluster


@pytest.fixture
async def cluster(tmp_path, models_dir, config_dir, postgres_url, redis_url):
    """``await cluster(count=2, **env)`` -> a started Cluster; ``.telegram`` and ``.vk`` are its fakes."""
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
