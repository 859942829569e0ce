"""Several real ``seamline run`` processes on one PostgreSQL and one Redis, for the scale-out tests.

The supported shape "N separate processes with the same settings, on several machines": every
worker gets the same database, Redis, secret key, config and trained model, but its own port and
data folder (as if on its own machine). A test talks to each worker directly, the way a load
balancer would spread the traffic, so it can put the customer on worker A and the agent on worker B.

The platforms are the fakes of tests/fakes (FakeTelegram in webhook mode, FakeVk with the Callback
API); updates are POSTed by the test to the worker it chooses, with the webhook secret. Widget
visitors and agents' consoles are plain aiohttp WebSocket clients speaking docs/web-chat-protocol.md
and the console's inbox protocol (handoff/api.py).

Readiness is asked over HTTP (``/readyz`` when the worker has it, else ``/healthz``), not read from
the banner, so the check does not depend on what ``seamline run`` prints.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import SECRET
from tests.fakes.telegram import SECRET_HEADER, TOKEN, FakeTelegram
from tests.fakes.vk import FakeVk
from tests.support import free_port

WEBHOOK_SECRET = "scale-webhook-secret-0123"
VK_CONFIRMATION, VK_SECRET = "sc4le0k", "scale-vk-secret-0123"
PASSWORD = "correct horse battery"
READY_SECONDS = 90.0  # two cores shared by several test sessions: starting can be slow


class Worker:
    """One ``seamline run`` process; ``kill()`` is SIGKILL (nothing flushed), ``stop()`` SIGTERM."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name, self.env, self.log = name, env, log
        self.port = int(env["SEAMLINE_PORT"])
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> Worker:
        with open(self.log, "ab") as out:
            out.write(f"--- {self.name} starting on port {self.port}\n".encode())
            out.flush()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "seamline.bots.cli", "run", env=self.env, stdout=out, stderr=out
            )
        await self.ready()
        return self

    async def ready(self, timeout: float = READY_SECONDS) -> None:
        """Wait until the worker answers ``/readyz`` (or ``/healthz`` where there is no /readyz) with 200."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.running, f"{self.name} exited ({self.process and self.process.returncode}) while starting"
                for path in ("/readyz", "/healthz"):
                    try:
                        async with http.get(self.url + path, timeout=aiohttp.ClientTimeout(total=2)) as response:
                            if response.status == 200:
                                return
                            if response.status != 404:
                                break  # /readyz exists and says not yet
                    except (aiohttp.ClientError, TimeoutError):
                        break
                assert loop.time() < deadline, f"{self.name} not ready after {timeout} s"
                await asyncio.sleep(0.1)

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), 30)

    async def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait (SIGKILL if it hangs past ``timeout``); returns the exit code."""
        if not self.running:
            return self.process.returncode if self.process else None
        assert self.process is not None
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        return self.process.returncode


class Cluster:
    """K workers sharing PostgreSQL and Redis, with Telegram (webhook) and VK (Callback API) on the fakes."""

    def __init__(
        self,
        root: Path,
        *,
        models_dir: Path,
        config_dir: Path,
        database_url: str,
        redis_url: str,
        telegram: FakeTelegram,
        vk: FakeVk,
        count: int = 2,
        **extra: str,
    ) -> None:
        self.root, self.database_url, self.telegram, self.vk = root, database_url, telegram, vk
        ports = [free_port() for _ in range(count)]
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SEAMLINE_", "PROMETHEUS_"))}
        self.workers: list[Worker] = []
        for index, port in enumerate(ports):
            data = root / f"w{index}"
            data.mkdir(parents=True, exist_ok=True)
            env = dict(
                base,
                PYTHONUNBUFFERED="1",
                SEAMLINE_HOST="127.0.0.1",
                SEAMLINE_PORT=str(port),
                SEAMLINE_DATA_DIR=str(data),
                SEAMLINE_CONFIG_DIR=str(config_dir),
                SEAMLINE_NLU_MODELS=str(models_dir),
                SEAMLINE_DATABASE_URL=database_url,
                SEAMLINE_REDIS_URL=redis_url,
                SEAMLINE_SECRET_KEY=SECRET,
                SEAMLINE_TELEGRAM_TOKEN=TOKEN,
                SEAMLINE_TELEGRAM_API_BASE=telegram.url,
                SEAMLINE_TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
                # what a load balancer in front would be; the test posts to each worker itself
                SEAMLINE_TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{ports[0]}/telegram/webhook",
                SEAMLINE_VK_TOKEN=vk.token,
                SEAMLINE_VK_GROUP_ID=str(vk.group_id),
                SEAMLINE_VK_API_BASE=vk.url,
                SEAMLINE_VK_CONFIRMATION=VK_CONFIRMATION,
                SEAMLINE_VK_SECRET=VK_SECRET,
                **extra,
            )
            self.workers.append(Worker(f"worker-{index}", env, root / f"worker-{index}.log"))
        self._http: aiohttp.ClientSession | None = None
        self._emails = itertools.count(1)

    def __getitem__(self, index: int) -> Worker:
        return self.workers[index]

    async def start(self) -> Cluster:
        self._http = aiohttp.ClientSession()
        await asyncio.gather(*(w.start() for w in self.workers))
        return self

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self._http is not None, "start the cluster first"
        return self._http

    def log_marks(self) -> dict[str, int]:
        """Where each worker's log ends now: ``logs(since=...)`` and ``tracebacks(since=...)`` read what follows."""
        return {w.name: w.log.stat().st_size if w.log.exists() else 0 for w in self.workers}

    def _read(self, worker: Worker, since: dict[str, int] | None) -> str:
        if not worker.log.exists():
            return ""
        with open(worker.log, "rb") as log:
            log.seek((since or {}).get(worker.name, 0))
            return log.read().decode(errors="replace")

    def logs(self, since: dict[str, int] | None = None) -> str:
        return "\n".join(f"===== {w.name} ({w.log}) =====\n{self._read(w, since)}" for w in self.workers)

    def tracebacks(self, since: dict[str, int] | None = None) -> list[str]:
        """The workers whose log shows a traceback (since the marks)."""
        return [w.name for w in self.workers if "Traceback" in self._read(w, since)]

    # -- the platforms, through the worker the test picks -------------------------------------------

    async def telegram_post(self, worker: int, update: dict) -> int:
        """POST one update to a worker's webhook as Telegram does; the HTTP status (0: no connection)."""
        url = self.workers[worker].url + "/telegram/webhook"
        try:
            async with self.http.post(
                url, json=update, headers={SECRET_HEADER: WEBHOOK_SECRET}, timeout=aiohttp.ClientTimeout(total=30)
            ) as response:
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return 0

    async def vk_post(self, worker: int, event: dict) -> tuple[int, str]:
        """POST one event to a worker's Callback API address as VK does; (status, body), (0, "") unreachable."""
        url = self.workers[worker].url + "/vk/callback"
        try:
            async with self.http.post(
                url, json=dict(event, secret=VK_SECRET), timeout=aiohttp.ClientTimeout(total=30)
            ) as response:
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return 0, ""

    # -- people --------------------------------------------------------------------------------------

    async def widget(self, worker: int) -> Widget:
        return await Widget(self.http, self.workers[worker]).open()

    async def agent(self, worker: int, *, capacity: int = 5) -> Agent:
        """A new agent (written to the shared database, as ``seamline agents add`` does), logged in on a worker."""
        from seamline.handoff.agents import AgentStore
        from seamline.shared.storage.database import create_engine
        from seamline.shared.storage.sql import SqlChatStore

        email = f"agent{next(self._emails)}-{uuid.uuid4().hex[:6]}@example.com"
        store = SqlChatStore(engine=create_engine(self.database_url))
        try:
            await AgentStore(store).add(email, name="Agent", password=PASSWORD, queues=[], capacity=capacity)
        finally:
            await store.close()
            await store.engine.dispose()
        return await Agent(self.http, self.workers[worker]).log_in(email)


class Widget:
    """A website visitor's chat socket on one worker; every frame the server sends is kept in ``frames``."""

    def __init__(self, http: aiohttp.ClientSession, worker: Worker) -> None:
        self.http, self.worker = http, worker
        self.frames: list[dict[str, Any]] = []
        self.token: str | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task | None = None
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)
        self.prefix = f"c-{uuid.uuid4().hex[:8]}"

    async def open(self) -> Widget:
        self._ws = await self.http.ws_connect(self.worker.url + "/chat/ws")
        await self._ws.send_json({"type": "hello", "token": self.token, "lang": "en"})
        welcome = await self._ws.receive_json(timeout=30)
        assert welcome["type"] == "welcome", welcome
        self.token = welcome["token"]
        self.frames.append(welcome)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            if frame.type == aiohttp.WSMsgType.TEXT:
                self.frames.append(json.loads(frame.data))
                self._changed.set()
        self._changed.set()

    async def reopen(self, worker: Worker) -> dict[str, Any]:
        """Reconnect (to ``worker``) with the stored token, as the widget does after a drop; the welcome."""
        if self._reader is not None:
            await self.close()
        self.worker = worker
        seen = len(self.frames)
        await self.open()
        return self.frames[seen]

    async def ask(self, text: str, others: Callable[[], Worker], timeout: float = 90.0) -> str:
        """Say ``text`` and wait for the bot's answer, as the bundled widget would: when the socket
        drops (its worker died), reconnect to ``others()`` and resend the same id unless the
        welcome's history already shows the answer. Returns the message's id."""
        message_id = await self.say(text)
        start = len(self.frames)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if any(f.get("type") == "message" and f.get("role") == "bot" for f in self.frames[start:]):
                return message_id
            refused = [f for f in self.frames[start:] if f.get("type") == "error" and f.get("id") == message_id]
            if refused and not self.closed:  # "unavailable" or "internal": resend the same id after a pause
                assert refused[0]["code"] in ("unavailable", "internal"), refused
                await asyncio.sleep(1)
                start = len(self.frames)
                await self.resend(message_id, text)
                continue
            if self.closed:
                welcome = await self.reopen(others())
                history = [m for m in welcome["history"] if m.get("type") == "message"]
                ids = [m["id"] for m in history]
                if message_id in ids and any(m["role"] == "bot" for m in history[ids.index(message_id) + 1 :]):
                    return message_id
                start = len(self.frames)
                await self.resend(message_id, text)
                continue
            remaining = deadline - loop.time()
            assert remaining > 0, (
                f"widget on {self.worker.name}: no answer to {message_id} in {timeout} s: {self.frames}"
            )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass

    async def resend(self, message_id: str, text: str) -> None:
        assert self._ws is not None
        try:
            await self._ws.send_json({"type": "message", "id": message_id, "text": text})
        except ConnectionError:
            pass  # dropped meanwhile: ``ask`` reconnects

    def shown_replies(self) -> set[str]:
        """The ids of every bot or agent message this widget was ever shown (live or in a history)."""
        ids = set()
        for frame in self.frames:
            for message in [frame, *frame.get("history", ())]:
                if message.get("type") == "message" and message.get("role") in ("bot", "agent"):
                    ids.add(message["id"])
        return ids

    async def say(self, text: str) -> str:
        """Send a message; returns its client id."""
        assert self._ws is not None
        message_id = f"{self.prefix}-{next(self._ids)}"
        await self._ws.send_json({"type": "message", "id": message_id, "text": text})
        return message_id

    def messages(self, role: str) -> list[dict[str, Any]]:
        """Live message frames of a role (not the history of a welcome), in arrival order."""
        return [f for f in self.frames if f.get("type") == "message" and f.get("role") == role]

    async def wait(self, check: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (result := check()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"widget on {self.worker.name}: not {what or check} in {timeout} s: {self.frames}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass
        return result

    @property
    def closed(self) -> bool:
        return self._ws is None or self._ws.closed

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


class Agent:
    """One agent using the REST API and the live inbox socket of one worker."""

    def __init__(self, http: aiohttp.ClientSession, worker: Worker) -> None:
        self.http, self.worker = http, worker
        self.token = ""
        self.id = ""
        self.events: list[dict[str, Any]] = []
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task | None = None

    @property
    def base(self) -> str:
        return self.worker.url + "/api/v1"

    async def log_in(self, email: str) -> Agent:
        async with self.http.post(
            self.base + "/auth/login", json={"email": email, "password": PASSWORD, "kind": "api"}
        ) as response:
            body = await response.json()
            assert response.status == 200, body
        self.token = body["token"]
        self.id = (await self.get("/me"))["id"]
        return self

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, status: int = 200) -> Any:
        async with self.http.get(self.base + path, headers=self.headers) as response:
            body = await response.json()
            assert response.status == status, (path, response.status, body)
            return body

    async def post(self, path: str, body: dict | None = None, status: int = 200) -> Any:
        async with self.http.post(self.base + path, json=body or {}, headers=self.headers) as response:
            data = await response.json()
            assert response.status == status, (path, response.status, data)
            return data

    async def waiting(self, channel: str, timeout: float = 30.0) -> str:
        """The id of the conversation of a customer last seen on ``channel`` waiting for people (or
        already given to this agent by routing)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for state in ("queued", "with_agent"):
                found = (await self.get(f"/conversations?state={state}"))["conversations"]
                found = [c for c in found if c["customer"]["last_channel"] == channel]
                if found:
                    return str(found[0]["id"])
            assert loop.time() < deadline, f"no conversation waiting for people after {timeout} s"
            await asyncio.sleep(0.1)

    async def take(self, conversation: str) -> None:
        """Claim it (unless routing already gave it to this agent)."""
        summary = await self.get(f"/conversations/{conversation}")
        if (summary["state"], summary.get("agent_id")) != ("with_agent", self.id):
            claimed = await self.post(f"/conversations/{conversation}/claim")
            assert (claimed["state"], claimed["agent_id"]) == ("with_agent", self.id), claimed

    async def reply(self, conversation: str, text: str) -> dict:
        return await self.post(f"/conversations/{conversation}/messages", {"text": text})

    async def open_inbox(self) -> None:
        self._ws = await self.http.ws_connect(self.base + "/inbox")
        await self._ws.send_json({"type": "auth", "token": self.token})
        hello = await self._ws.receive_json(timeout=30)
        assert hello["type"] == "hello", hello
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            if frame.type == aiohttp.WSMsgType.TEXT:
                self.events.append(json.loads(frame.data))

    def customer_texts(self, conversation: str) -> list[str]:
        """What the live inbox showed this agent the customer of ``conversation`` writing."""
        return [
            e["message"]["text"]
            for e in self.events
            if e.get("type") == "message"
            and e.get("conversation_id") == conversation
            and e["message"].get("role") == "customer"
        ]

    async def close(self) -> None:
        """Close the inbox and go offline (what this agent held goes back to the queue)."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        if self.token:
            await self.post("/me/status", {"status": "offline"})


TEXTS = ("hello", "what are your opening hours", "how much is delivery", "thanks")  # one bot reply each


async def until(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """Wait until ``check()`` (plain or async) is truthy and return it; fail naming ``what`` after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        assert loop.time() < deadline, f"not {what or check} after {timeout} s"
        await asyncio.sleep(0.05)


async def stored(
    database_url: str, channel: str, chat: str
) -> tuple[list[str], list[bool], list[tuple[str, str, str]]]:
    """What the database holds of one chat: the inbox's platform ids in arrival order, whether each
    is done, and the customer's history as (role, text, external id) in the order agents read it."""
    from sqlalchemy import select

    from seamline.shared.storage.database import create_engine
    from seamline.shared.storage.models import InboxRow, MessageRow

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            inbox = (
                await conn.execute(
                    select(InboxRow.platform_id, InboxRow.done_at)
                    .where(InboxRow.channel == channel, InboxRow.chat == chat)
                    .order_by(InboxRow.id)
                )
            ).all()
            customers = select(MessageRow.customer_id).where(MessageRow.channel == channel, MessageRow.identity == chat)
            messages = (
                await conn.execute(
                    select(MessageRow.role, MessageRow.text, MessageRow.external_id)
                    .where(MessageRow.customer_id.in_(customers))
                    .order_by(MessageRow.created_at, MessageRow.id)
                )
            ).all()
    finally:
        await engine.dispose()
    return (
        [row.platform_id for row in inbox],
        [row.done_at is not None for row in inbox],
        [(row.role, row.text, row.external_id or "") for row in messages],
    )


async def processed(database_url: str, channel: str, chat: str, count: int, timeout: float = 60.0) -> tuple:
    """Wait until ``count`` inbox rows of the chat are stored and done; then what ``stored`` returns."""

    async def done() -> tuple | None:
        found = await stored(database_url, channel, chat)
        return found if len(found[1]) >= count and all(found[1]) else None

    return await until(done, timeout, f"{count} {channel} updates of chat {chat} processed")
