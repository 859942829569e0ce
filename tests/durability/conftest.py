"""Fixtures of the durability tests: one database, SQLite and PostgreSQL, and two stores on it
(each with its own engine, as two worker processes have)."""

from __future__ import annotations

import pytest

from seamline.shared.storage.database import create_engine
from seamline.shared.storage.sql import SqlChatStore


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, sqlite_url):
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else sqlite_url


@pytest.fixture
async def stores(database_url):
    """Two stores on one database, each with its own engine: two worker processes."""
    made = [SqlChatStore(engine=create_engine(database_url)) for _ in range(2)]
    yield made
    for store in made:
        await store.close()
        await store.engine.dispose()
