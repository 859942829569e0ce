"""The customers of benchmarks/scale.py: Telegram, VK and widget conversations against one address.

Telegram and VK customers are delivered the way the platforms deliver in production with several
workers: Telegram's webhook (an update POSTed to /telegram/webhook with the secret header, several at
a time as Telegram does with max_connections) and VK's Callback API (POST /vk/callback with the
secret). The updates are built by the fakes of tests/fakes/ (their recorded wire shapes), and the
answers are seen where a user would see them: at the fake Bot API (sendMessage, called by aiogram)
and the fake VK API (messages.send, called by vk_api), and on the widget's own WebSocket.

Each conversation says "hi" first (that makes the customer; not measured), then, once every customer
exists, writes, waits for the answer, pauses ``pace`` seconds on average (a person reading and
typing) and writes again, until the window closes. Latency runs from sending to the answer being
seen. An answer not seen in ANSWER_TIMEOUT seconds ends its conversation (counted as late: the
message is stored and answered later, but the customer here gave up waiting).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.telegram import SECRET_HEADER, Call, FakeTelegram  # noqa: E402
from tests.fakes.vk import FakeVk  # noqa: E402

# Each gets exactly one answer from the retail template (no escalation, no second message), so "the
# answer" is one sendMessage / messages.send / bot frame.
TEXTS = [
    "hello",
    "where is my order",
    "48213",
    "how much is delivery",
    "thank you",
    "when do you open",
    "what time do you work",
    "goodbye",
]
ANSWER_TIMEOUT = 30.0
CHANNELS = ("telegram", "vk", "web")
ARRIVAL = 10.0  # seconds over which the customers say their first "hi" (not measured)


class Refused(Exception):
    """The server answered a delivery with something other than success."""


class WatchedVk(FakeVk):
    """The fake VK API telling the benchmark of each messages.send as it is recorded (the fake only
    offers polling ``wait_for``, which wakes every waiter on every call: too dear for 500 customers)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.on_send: Callable[[int, float], None] = lambda peer, at: None

    def _send(self, params: dict[str, str]) -> int:
        before = len(self.sent)
        result = super()._send(params)
        if len(self.sent) > before:
            self.on_send(self.sent[-1]["peer_id"], self.sent[-1]["at"])
        return result


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CHANNELS})
    lost: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANNELS, 0))
    refused: int = 0
    greeted: int = 0


@dataclass
class Target:
    """Where the customers go: the server's address and what the channels need to reach it."""

    base: str  # http://127.0.0.1:port
    telegram: FakeTelegram
    vk: WatchedVk
    telegram_secret: str
    vk_secret: str


class Waiters:
    """Futures for the next answer to each address, resolved with the moment it was seen."""

    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[float]] = {}

    def expect(self, address: str) -> asyncio.Future[float]:
        future = self._futures[address] = asyncio.get_running_loop().create_future()
        return future

    def seen(self, address: str, at: float) -> None:
        future = self._futures.pop(address, None)
        if future is not None and not future.done():
            future.set_result(at)


Say = Callable[[str], Awaitable[float]]  # send one text; milliseconds until its answer was seen


async def drive(
    target: Target, conversations: int, seconds: float, pace: float, mark: Callable[[], None]
) -> tuple[Tally, float]:
    """Run the load; the tally and the measured window's length. ``mark`` is called as the window
    opens and as it closes (the caller reads the servers' CPU time then)."""
    tally = Tally()
    telegram_waiters, vk_waiters = Waiters(), Waiters()
    clock_offset = time.monotonic() - time.perf_counter()  # the VK fake stamps with perf_counter

    def telegram_answered(call: Call) -> None:
        if call.method == "sendMessage" and call.ok:
            telegram_waiters.seen(str(call.params.get("chat_id")), call.at)

    target.telegram.listen(telegram_answered)
    target.vk.on_send = lambda peer, at: vk_waiters.seen(str(peer), at + clock_offset)
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    everyone = asyncio.Event()
    window = [float("inf"), float("inf")]

    def telegram_say(chat: int) -> Say:
        async def say(text: str) -> float:
            future = telegram_waiters.expect(str(chat))
            update = target.telegram.update("message_text", chat_id=chat, text=text)
            sent = time.monotonic()
            async with http.post(
                f"{target.base}/telegram/webhook", json=update, headers={SECRET_HEADER: target.telegram_secret}
            ) as response:
                if response.status != 200:
                    raise Refused(f"telegram webhook {response.status}")
            return (await asyncio.wait_for(future, ANSWER_TIMEOUT) - sent) * 1000

        return say

    def vk_say(peer: int) -> Say:
        async def say(text: str) -> float:
            future = vk_waiters.expect(str(peer))
            body = dict(target.vk.message_new(peer, text), secret=target.vk_secret)
            sent = time.monotonic()
            async with http.post(f"{target.base}/vk/callback", json=body) as response:
                if response.status != 200 or (await response.text()) != "ok":
                    raise Refused(f"vk callback {response.status}")
            return (await asyncio.wait_for(future, ANSWER_TIMEOUT) - sent) * 1000

        return say

    async def web_conversation(n: int, rng: random.Random) -> None:
        address = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"  # one visitor each, as behind a proxy
        ws_url = target.base.replace("http", "ws", 1) + "/chat/ws"
        async with http.ws_connect(ws_url, headers={"X-Forwarded-For": address}, heartbeat=None) as ws:
            await ws.send_json({"type": "hello", "token": None})
            welcome = await ws.receive_json(timeout=ANSWER_TIMEOUT)
            if welcome.get("type") != "welcome":
                raise Refused(f"widget hello answered {welcome}")
            counter = iter(range(1_000_000))

            async def say(text: str) -> float:
                sent = time.monotonic()
                await ws.send_json({"type": "message", "id": f"s{n}-{next(counter)}", "text": text})
                while True:
                    frame = await ws.receive_json(timeout=ANSWER_TIMEOUT)
                    if frame.get("type") == "error":
                        raise Refused(f"widget error frame {frame.get('code')}")
                    if frame.get("role") == "bot":
                        return (time.monotonic() - sent) * 1000

            await talk("web", say, n, rng)

    async def talk(channel: str, say: Say, n: int, rng: random.Random) -> None:
        try:
            try:
                await say("hi")
            finally:
                tally.greeted += 1
                if tally.greeted == conversations:
                    everyone.set()
            await everyone.wait()
            await asyncio.sleep(rng.uniform(0, pace))  # customers do not all write in the same instant
            i = 0
            while time.monotonic() < window[1]:
                try:
                    latency = await say(TEXTS[(n + i) % len(TEXTS)])
                except Refused:
                    tally.refused += 1
                    await asyncio.sleep(1)
                    continue
                if time.monotonic() < window[1]:
                    tally.latencies[channel].append(latency)
                i += 1
                await asyncio.sleep(rng.uniform(0.5, 1.5) * pace)
        except (TimeoutError, Refused, aiohttp.ClientError, TypeError, ValueError):
            tally.lost[channel] += 1

    async def conversation(n: int) -> None:
        rng = random.Random(n)
        await asyncio.sleep(rng.uniform(0, ARRIVAL))  # the customers arrive over some seconds
        channel = CHANNELS[n % 3]
        try:
            if channel == "telegram":
                await talk(channel, telegram_say(700_000 + n), n, rng)
            elif channel == "vk":
                await talk(channel, vk_say(300_000 + n), n, rng)
            else:
                await web_conversation(n, rng)
        except (TimeoutError, Refused, aiohttp.ClientError, TypeError, ValueError):  # the widget's connect or hello
            tally.lost[channel] += 1
            if not everyone.is_set():
                tally.greeted += 1
                if tally.greeted >= conversations:
                    everyone.set()

    tasks = [asyncio.create_task(conversation(n)) for n in range(conversations)]
    try:
        await asyncio.wait_for(everyone.wait(), ARRIVAL + 2 * ANSWER_TIMEOUT + 60)
        window[0] = time.monotonic()
        window[1] = window[0] + seconds
        mark()
        asyncio.get_running_loop().call_at(window[1], mark)
        # The last answers are awaited, bounded: a conversation still stuck then (a request the
        # server holds, frames that never end in the answer) counts as one that lost its answer.
        _done, stuck = await asyncio.wait(tasks, timeout=seconds + ANSWER_TIMEOUT + pace * 2 + 10)
        for n, task in enumerate(tasks):
            if task in stuck:
                tally.lost[CHANNELS[n % 3]] += 1
        return tally, window[1] - window[0]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await http.close()
