"""Telegram channel throughput and latency: Seamline in this process, long polling a fake Bot API.

    python benchmarks/telegram_load.py [--conversations 32] [--seconds 10]

Starts the fake Telegram Bot API of tests/fakes/telegram.py and Seamline (``bots.app.create_app``
on embedded SQLite in a temporary directory, in-process sessions, the intent model trained at
start) with its Telegram channel long polling the fake. N chats talk at once; each sends its next
message when the answer to the previous one arrived. Latency runs from the update being queued at
the fake to the fake recording the bot's sendMessage. The first message of each chat (which makes
the customer) is sent before the clock starts. As a baseline in the same run, a bare aiogram bot
(getUpdates, then sendMessage of the same text: no pipeline, no database) is driven the same way.
Bounded: each target is measured for ``seconds``; an answer not seen in 10 s ends its chat.
Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the fake lives in tests/

from aiohttp import web  # noqa: E402

from tests.fakes.telegram import TOKEN, Call, FakeTelegram  # noqa: E402

# Each of these gets exactly one message back (no escalation), so "the answer" is one sendMessage.
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
ANSWER_TIMEOUT = 10.0


async def _drive(fake: FakeTelegram, conversations: int, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    waiting: dict[str, asyncio.Future] = {}

    def answered(call: Call) -> None:
        if call.method == "sendMessage" and call.ok:
            future = waiting.get(str(call.params.get("chat_id")))
            if future is not None and not future.done():
                future.set_result(call.at)

    fake.listen(answered)

    async def say(chat: int, text: str) -> float:
        """Send one message; the milliseconds until the bot's answer was recorded."""
        future = waiting[str(chat)] = loop.create_future()
        sent = time.monotonic()
        fake.enqueue(fake.update("message_text", chat_id=chat, text=text))
        return (await asyncio.wait_for(future, ANSWER_TIMEOUT) - sent) * 1000

    latencies: list[float] = []
    lost = 0
    started = asyncio.Event()
    warmed: list[int] = []
    stop_at = 0.0

    async def conversation(n: int) -> None:
        nonlocal lost
        chat = 10_000 + n
        try:
            try:
                await say(chat, "hi")  # makes the customer; not measured
            finally:
                warmed.append(chat)
            await started.wait()
            i = 0
            while time.monotonic() < stop_at:
                latency = await say(chat, TEXTS[(n + i) % len(TEXTS)])
                if time.monotonic() < stop_at:
                    latencies.append(latency)
                i += 1
        except TimeoutError:
            lost += 1

    tasks = [asyncio.create_task(conversation(n)) for n in range(conversations)]
    while len(warmed) < conversations:  # every customer exists before the clock starts
        await asyncio.sleep(0.05)
    begin = time.monotonic()
    stop_at = begin + seconds
    started.set()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - begin
    if len(latencies) < 2:
        raise SystemExit(f"only {len(latencies)} answers in {seconds} s ({lost} chats got no answer)")
    q = statistics.quantiles(latencies, n=100)
    return {
        "messages_per_s": len(latencies) / elapsed,
        "p50_ms": q[49],
        "p99_ms": q[98],
        "messages": len(latencies),
        "lost": lost,
    }


async def run(conversations: int, seconds: float) -> dict:
    """Seamline's Telegram channel under ``conversations`` concurrent chats for ``seconds``:
    {"messages_per_s", "p50_ms", "p99_ms"}."""
    from seamline.bots.app import create_app
    from seamline.nlu.understanding import Understanding
    from seamline.shared.settings import CONFIG_DIR, Settings
    from seamline.shared.storage.database import upgrade

    with tempfile.TemporaryDirectory(prefix="seamline-telegram-bench-") as workdir:
        database = f"sqlite+aiosqlite:///{workdir}/bench.db"
        await asyncio.to_thread(upgrade, database)
        async with FakeTelegram() as fake:
            settings = Settings(
                port=0,
                database_url=database,
                secret_key="benchmark-secret-key-0123456789",
                data_dir=Path(workdir),
                log_level="WARNING",
                channels={"telegram": {"token": TOKEN, "api_base": fake.url}},
            )
            runner = web.AppRunner(await create_app(settings, understanding=Understanding.from_config(CONFIG_DIR)))
            await runner.setup()  # starts the channel: getMe, deleteWebhook, long polling
            try:
                figures = await _drive(fake, conversations, seconds)
            finally:
                await runner.cleanup()
    return {key: figures[key] for key in ("messages_per_s", "p50_ms", "p99_ms")}


async def run_baseline(conversations: int, seconds: float) -> dict:
    """The same load on a bare aiogram echo bot: what the transport alone costs."""
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    async with FakeTelegram() as fake:
        bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.url)))
        replies: set[asyncio.Task] = set()

        async def echo() -> None:
            offset = None
            while True:
                for update in await bot.get_updates(offset=offset, timeout=25, request_timeout=35):
                    offset = update.update_id + 1
                    reply = asyncio.create_task(bot.send_message(update.message.chat.id, update.message.text))
                    replies.add(reply)
                    reply.add_done_callback(replies.discard)

        poller = asyncio.create_task(echo())
        try:
            figures = await _drive(fake, conversations, seconds)
        finally:
            poller.cancel()
            await asyncio.gather(poller, *replies, return_exceptions=True)
            await bot.session.close()
    return {key: figures[key] for key in ("messages_per_s", "p50_ms", "p99_ms")}


def _print(name: str, figures: dict) -> None:
    print(
        f"{name:<26} {figures['messages_per_s']:8.0f} msg/s   p50 {figures['p50_ms']:7.2f} ms   "
        f"p99 {figures['p99_ms']:7.2f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print(f"{args.conversations} concurrent Telegram chats, {args.seconds:.0f} s each, long polling a local fake")
    seamline = await run(args.conversations, args.seconds)
    _print("seamline (embedded)", seamline)
    echo = await run_baseline(args.conversations, args.seconds)
    _print("bare aiogram echo", echo)
    print(f"ratio seamline / echo: {seamline['messages_per_s'] / echo['messages_per_s']:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
