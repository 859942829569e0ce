"""Every channel in one run: the web chat, Telegram and VK, each against its own peer.

    python benchmarks/channels.py [--conversations 32] [--seconds 8]

Web chat: a fresh `seamline run` driven over WebSockets (benchmarks/web_chat.py). Telegram and
VK: Seamline long polling the local fake Bot API / VK API (tests/fakes/), latency from the update
being queued at the fake to the fake recording the bot's answer (benchmarks/telegram_load.py,
benchmarks/vk_load.py). Each conversation sends its next message when the answer to the previous
one arrived. Bounded: each channel is measured for --seconds. Only 127.0.0.1 is used.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import telegram_load  # noqa: E402
import vk_load  # noqa: E402
import web_chat  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"{args.conversations} concurrent conversations per channel, {args.seconds:g} s each, embedded SQLite")
    results = {
        "web chat (WebSocket)": await web_chat.run(args.conversations, args.seconds),
        "telegram (long poll)": await telegram_load.run(args.conversations, args.seconds),
        "vk (bots long poll)": await vk_load.run(args.conversations, args.seconds),
    }
    for name, figures in results.items():
        print(f"  {name:<22} {figures['messages_per_s']:8.0f} msg/s   p50 {figures['p50_ms']:7.1f} ms   "
              f"p99 {figures['p99_ms']:7.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
