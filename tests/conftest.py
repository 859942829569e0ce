"""Fixtures shared by every test: settings on a temporary database, real backends, a running server.

Redis and PostgreSQL come from tests/services.sh (``make test``). Without them the tests that
need them are skipped, unless SEAMLINE_REQUIRE_SERVICES=1 (as in CI), where they fail.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from seamline.shared.files import SQLITE_COMPANIONS
from seamline.shared.settings import CONFIG_DIR, Settings
from seamline.shared.storage.database import upgrade

from tests.support import CHROMIUM_ARGS, chromium_or_skip

SECRET = "test-secret-key-0123456789abcdef"


def _service(name: str) -> str:
    url = os.environ.get(name, "")
    if not url:
        message = f"{name} is not set: run the tests with `make test` (tests/services.sh starts the servers)"
        if os.environ.get("SEAMLINE_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return url


MODEL_CACHE = Path(__file__).resolve().parent.parent / "build" / "test-models"


def _nlu_code_digest() -> str:
    """What a trained model depends on besides its data: the code of seamline.nlu."""
    digest = hashlib.sha256()
    for source in sorted((Path(__file__).resolve().parent.parent / "nlu").glob("*.py")):
        digest.update(source.name.encode() + source.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """A models directory holding a model trained as `seamline nlu train` does, on config/intents.

    Training takes seconds, so the model is kept between runs in build/test-models, under the
    digest of seamline.nlu's code (train_to itself retrains when the data changed); each run, and
    each xdist worker, gets a copy, so a test that trains into models_dir changes only its own."""
    from seamline.nlu.data import load
    from seamline.nlu.lifecycle import train_to

    cache = MODEL_CACHE / _nlu_code_digest()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process trains, the others wait and copy
        model, _ = train_to(cache, load(CONFIG_DIR / "intents"))
        directory = tmp_path_factory.mktemp("models")
        shutil.copy2(model, directory / model.name)
    return directory


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes():
    """Agents' passwords hashed with scrypt at n=2**4 instead of 2**14 in this process: the tests log
    in hundreds of times and each hash costs ~50 ms of CPU at the real cost. What is checked stays the
    same (a hash records its own cost; tests/security/test_agent_passwords.py checks the real one)."""
    from seamline.handoff import agents

    real = dict(agents.SCRYPT)
    agents.SCRYPT.update(n=2**4)
    dummy = agents._DUMMY
    agents._DUMMY = agents.hash_password("not a password of anyone")
    yield real
    agents.SCRYPT.update(real)
    agents._DUMMY = dummy


@pytest.fixture(scope="session")
def understanding(models_dir):
    from seamline.nlu.lifecycle import latest
    from seamline.nlu.understanding import Understanding

    return Understanding.from_file(latest(models_dir))


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A SQLite database migrated to the newest revision once per run (alembic takes ~0.3 s)."""
    path = tmp_path_factory.mktemp("template") / "seamline.db"
    with ThreadPoolExecutor(1) as pool:
        pool.submit(upgrade, f"sqlite+aiosqlite:///{path}").result()
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, migrated_sqlite: Path) -> str:
    """A fresh, migrated SQLite database for one test: a copy of the session's migrated one."""
    for companion in SQLITE_COMPANIONS:
        source = migrated_sqlite.with_name(migrated_sqlite.name + companion)
        if source.exists():
            shutil.copy2(source, tmp_path / source.name)
    return f"sqlite+aiosqlite:///{tmp_path}/seamline.db"


def _run_async(coro):
    """Run a coroutine to completion from a synchronous fixture, on its own loop in a thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _postgres_admin(dsn: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def fresh_postgres() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database on the test server, dropped afterwards."""
    admin = _service("SEAMLINE_TEST_DATABASE_URL")
    dsn = admin.replace("postgresql+asyncpg", "postgresql")
    name = f"t_{uuid.uuid4().hex[:12]}"
    _run_async(_postgres_admin(dsn, f'CREATE DATABASE "{name}"'))
    url = admin.rsplit("/", 1)[0] + "/" + name
    with ThreadPoolExecutor(1) as pool:
        pool.submit(upgrade, url).result()
    yield url
    _run_async(_postgres_admin(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def postgres_url():
    """A fresh, migrated PostgreSQL database for one test."""
    yield from fresh_postgres()


@pytest.fixture
def redis_url() -> str:
    """A Redis database emptied for one test."""
    from redis import Redis

    url = _service("SEAMLINE_TEST_REDIS_URL")
    with Redis.from_url(url) as client:
        client.flushdb()
    return url


def settings_in_environment(monkeypatch, settings: Settings) -> None:
    """A ``seamline`` command run in this test sees these settings, and no other SEAMLINE_ variable."""
    for name in list(os.environ):
        if name.startswith("SEAMLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SEAMLINE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SEAMLINE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SEAMLINE_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("SEAMLINE_CONFIG_DIR", str(settings.config_dir))
    if settings.redis_url:
        monkeypatch.setenv("SEAMLINE_REDIS_URL", settings.redis_url)


@pytest.fixture(scope="session")
def config_dir(tmp_path_factory) -> Path:
    """The shipped config/ with every queue always open: whether a customer reaches a person must
    not depend on the hour the tests run at (business hours: test_routing.py, test_api.py)."""
    copy = tmp_path_factory.mktemp("config") / "config"
    shutil.copytree(CONFIG_DIR, copy, ignore=shutil.ignore_patterns("templates", "__init__.py", "__pycache__"))
    routing = yaml.safe_load((copy / "routing.yml").read_text(encoding="utf-8"))
    routing["queues"] = {name: {} for name in routing.get("queues") or {}}
    (copy / "routing.yml").write_text(yaml.safe_dump(routing, allow_unicode=True), encoding="utf-8")
    return copy


RETAIL_ACTIONS = "seamline.config.templates.retail.actions"


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str, config_dir: Path) -> Settings:
    return Settings(
        host="127.0.0.1",
        port=0,
        database_url=sqlite_url,
        secret_key=SECRET,
        config_dir=config_dir,
        data_dir=tmp_path,
        actions_module=RETAIL_ACTIONS,  # the retail config's custom actions, as config/seamline.toml names them
    )


class Server:
    """A Seamline app served on 127.0.0.1 for a test; can be stopped and started on the same port."""

    def __init__(self, settings: Settings, understanding) -> None:
        self.settings, self._understanding = settings, understanding
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/chat/ws"

    async def start(self) -> Server:
        from seamline.bots.app import create_app

        self.app = await create_app(self.settings, understanding=self._understanding)
        self._runner = web.AppRunner(self.app, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def server(settings: Settings, understanding):
    running = await Server(settings, understanding).start()
    yield running
    await running.stop()


@pytest.fixture
async def make_server(understanding):
    """Start servers with other settings (e.g. PostgreSQL and Redis); all are stopped after the test."""
    started: list[Server] = []

    async def make(settings: Settings, **changes) -> Server:
        running = await Server(replace(settings, **changes), understanding).start()
        started.append(running)
        return running

    yield make
    for running in started:
        await running.stop()


def fail_storage_once(server, monkeypatch) -> list[str]:
    """The next turn finds Redis/the database down once; returns the keys it failed for."""
    from seamline.bots.app import SEAMLINE
    from seamline.shared.errors import StoreError

    sessions = server.app[SEAMLINE].pipeline._sessions
    real_lock, failed = sessions.lock, []

    def lock(key):
        if not failed:
            failed.append(key)
            raise StoreError("Redis failed locking session: connection refused")
        return real_lock(key)

    monkeypatch.setattr(sessions, "lock", lock)
    return failed


@pytest.fixture
async def http():
    """An HTTP client for one test (aiohttp: the same client the fakes and the app use)."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="session")
async def browser():
    """One headless Debian Chromium for the whole run (Playwright); a test opens its own context, so
    storage and cookies start empty. Skipped without Chromium, failed in CI."""
    executable = chromium_or_skip()
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


SERVICE_FIXTURES = {"redis_url", "postgres_url"}


def pytest_collection_modifyitems(items) -> None:
    """Tests that need Redis or PostgreSQL through the shared fixtures are marked ``services``
    (``browser`` and ``slow`` are marked in their modules): ``make test-fast`` leaves all three out."""
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)
