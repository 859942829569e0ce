"""VK channel load: concurrent customers on Bots Long Poll, each writing again once answered.

    python benchmarks/vk_load.py [--conversations 32] [--seconds 10]

Starts, in this process, the fake VK API (tests/fakes/vk.py) and Seamline on embedded defaults
(SQLite in a temporary directory, ``bots.app.create_app``) with the VK channel in long-poll mode,
going through the real vk_api library. Each conversation queues a message, waits until the fake
records the answer's ``messages.send``, and queues the next. Latency is measured by the fake, from
the moment the event is queued to the moment ``messages.send`` is recorded; each conversation's
first message (which creates the customer) is left out. Runs twice: with no limit on API calls
(the cost of Seamline, vk_api and the fake) and at VK's limit of 20 calls a second for a community
token (what production gets). Bounded: each run stops after --seconds. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402
from texts import TEXTS  # noqa: E402 - benchmarks/ is the script's folder, first on sys.path

from seamline.bots.app import create_app  # noqa: E402
from seamline.nlu.understanding import Understanding  # noqa: E402
from seamline.shared.settings import CONFIG_DIR, Settings  # noqa: E402
from seamline.shared.storage.database import upgrade  # noqa: E402

from tests.fakes.vk import FakeVk  # noqa: E402

VK_RATE_LIMIT = 20.0  # API calls a second allowed to a community token


async def run(conversations: int, seconds: float, *, rate_limit: float = 0.0) -> dict:
    """Drive ``conversations`` VK customers for ``seconds``; messages/s and p50/p99 latency in ms."""
    with tempfile.TemporaryDirectory(prefix="seamline-vk-bench-") as tmp:
        database = f"sqlite+aiosqlite:///{tmp}/seamline.db"
        await asyncio.to_thread(upgrade, database)
        async with FakeVk(hold=1.0) as fake:
            vk = {"token": fake.token, "group_id": fake.group_id, "api_base": fake.url, "rate_limit": int(rate_limit)}
            settings = Settings(
                host="127.0.0.1",
                port=0,
                database_url=database,
                secret_key="b" * 32,
                data_dir=Path(tmp),
                channels={"vk": vk},
            )  # as `seamline run` builds it
            app = await create_app(settings, understanding=Understanding.from_config(CONFIG_DIR))
            runner = web.AppRunner(app, shutdown_timeout=1)
            await runner.setup()
            try:
                return await _drive(fake, conversations, seconds)
            finally:
                await runner.cleanup()


async def _drive(fake: FakeVk, conversations: int, seconds: float) -> dict:
    latencies: list[float] = []
    greeted = 0
    all_greeted = asyncio.Event()
    start = end = float("inf")  # the measured window, set once every customer exists

    async def conversation(peer: int) -> None:
        nonlocal greeted
        for turn in itertools.count():
            if time.perf_counter() >= end:
                return
            before = len(fake.sent_to(peer))
            event = fake.push(fake.message_new(peer, TEXTS[(peer + turn) % len(TEXTS)]))
            await fake.wait_for(lambda before=before: len(fake.sent_to(peer)) > before, timeout=seconds + 60)
            answered_at = fake.sent_to(peer)[before]["at"]
            if start <= answered_at <= end:
                latencies.append(answered_at - fake.pushed[event["event_id"]])
            if turn == 0:
                greeted += 1
                if greeted == conversations:
                    all_greeted.set()

    tasks = [asyncio.create_task(conversation(100_000 + n)) for n in range(conversations)]
    await asyncio.wait_for(all_greeted.wait(), 120)
    start = time.perf_counter()
    end = start + seconds
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), seconds + 60)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()
    return {
        "messages_per_s": len(latencies) / seconds,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(
        f"VK long poll, {args.conversations} conversations, {args.seconds:g} s each run "
        "(fake VK API and Seamline in one process, SQLite)"
    )
    for label, rate in (("no API call limit", 0.0), (f"VK limit {VK_RATE_LIMIT:g} calls/s", VK_RATE_LIMIT)):
        figures = asyncio.run(run(args.conversations, args.seconds, rate_limit=rate))
        print(
            f"  {label:>24}: {figures['messages_per_s']:8.1f} messages/s   p50 {figures['p50_ms']:7.1f} ms"
            f"   p99 {figures['p99_ms']:7.1f} ms"
        )


if __name__ == "__main__":
    main()
