"""Every channel in one run: the REST channel beside the web chat under the same load, then Telegram and VK.

    python benchmarks/channels.py [--senders 64] [--seconds 10] [--rounds 2] [--max-messages 500] [--no-messengers]

Starts `seamline run` on embedded defaults (SQLite, in-process sessions) in a temporary directory,
with the REST channel on (a token) and the request budgets off (a benchmark sender writes far faster
than a person). Then, in the same run and against the same process, it drives each channel with
``--senders`` concurrent customers, each sending a message and waiting for the bot's answer before
the next one: the REST channel with Rasa-style POSTs (aiohttp, keep-alive), the web chat over its
WebSocket; each is warmed up for 2 s, then they are measured in turns (``--rounds``). Prints
messages/s and p50/p95/p99 latency of both. The first message of each customer (which creates it)
is measured apart. The client runs on the same machine: its own cost (an HTTP request is more
work than a WebSocket frame for the client too) is in the figures. Bounded: ``--seconds`` of measurement per channel and at
most ``--max-messages`` per customer. Only 127.0.0.1 is used.

Then (unless ``--no-messengers``) Telegram and VK, each a fresh `seamline run` long polling its
local fake (tests/fakes/) with as many conversations, latency from the update queued at the fake to
the fake recording the answer (benchmarks/telegram_load.py, benchmarks/vk_load.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from texts import TEXTS  # benchmarks/ is the script's folder, first on sys.path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOKEN = "benchmark-token-0123456789abcdef"

# One customer's conversation: ``open`` makes it (returns a ``say`` coroutine factory), ``say`` sends a
# text and returns once the bot answered it.
Say = Callable[[str], Awaitable[None]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_seamline(workdir: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMLINE_")}
    env.update(
        {
            "SEAMLINE_PORT": str(port),
            "SEAMLINE_HOST": "127.0.0.1",
            "SEAMLINE_DATA_DIR": workdir,
            "SEAMLINE_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/bench.db",
            "SEAMLINE_LOG_LEVEL": "WARNING",
            "SEAMLINE_CONFIG_DIR": str(ROOT / "config"),
            "SEAMLINE_NLU_MODELS": f"{workdir}/models",
            "SEAMLINE_WEB_RATE_LIMIT": "0",
            "SEAMLINE_WEB_ADDRESS_RATE_LIMIT": "0",
            "SEAMLINE_REST_TOKEN": TOKEN,
            "SEAMLINE_REST_RATE_LIMIT": "0",
            "SEAMLINE_REST_ADDRESS_RATE_LIMIT": "0",
        }
    )
    cli = [sys.executable, "-m", "seamline.bots.cli"]
    subprocess.run([*cli, "nlu", "train"], cwd=workdir, env=env, check=True, stdout=subprocess.DEVNULL)
    return subprocess.Popen([*cli, "run"], cwd=workdir, env=env, stdout=subprocess.DEVNULL), port


async def wait_up(base: str, process: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"seamline run exited with {process.returncode}")
            try:
                async with http.get(f"{base}/webhooks/rest/") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"seamline at {base} did not come up in {seconds:.0f}s")


def rest_customer(http: aiohttp.ClientSession, base: str, sender: str) -> Say:
    async def say(text: str) -> None:
        async with http.post(
            f"{base}/webhooks/rest/webhook",
            json={"sender": sender, "message": text},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as r:
            answer = await r.json()
            if r.status != 200 or not answer:
                raise SystemExit(f"the REST channel answered {r.status}: {answer}")

    return say


async def web_customer(http: aiohttp.ClientSession, base: str, opened: list) -> Say:
    ws = await http.ws_connect(base.replace("http", "ws", 1) + "/chat/ws")
    opened.append(ws)
    await ws.send_json({"type": "hello", "token": None})
    while (frame := await ws.receive_json())["type"] != "welcome":
        if frame["type"] == "error":
            raise SystemExit(f"the web chat refused hello: {frame}")
    ids = iter(range(10**9))

    async def say(text: str) -> None:
        await ws.send_str(json.dumps({"type": "message", "id": f"m{next(ids)}", "text": text}))
        while True:  # the echo of the customer's message, then the bot's answer
            frame = json.loads((await ws.receive()).data)
            if frame.get("type") == "error":
                raise SystemExit(f"the web chat answered with an error: {frame}")
            if frame.get("role") == "bot":
                return

    return say


async def opening(customers: list[Say]) -> float:
    """Every customer's first message, which creates it; the median latency, in ms."""
    first: list[float] = []

    async def one(say: Say) -> None:
        sent = time.perf_counter()
        await say("hi")
        first.append((time.perf_counter() - sent) * 1000)

    await asyncio.gather(*(one(say) for say in customers))
    return statistics.median(first)


async def drive(customers: list[Say], seconds: float, max_messages: int) -> dict:
    """All customers at once for ``seconds``, each waiting for the answer before its next message."""
    latencies: list[float] = []
    stop_at = time.monotonic() + seconds

    async def talk(n: int, say: Say) -> None:
        for i in range(max_messages):
            if time.monotonic() >= stop_at:
                return
            sent = time.perf_counter()
            await say(TEXTS[(n + i) % len(TEXTS)])
            latencies.append((time.perf_counter() - sent) * 1000)

    begin = time.monotonic()
    await asyncio.gather(*(talk(n, say) for n, say in enumerate(customers)))
    elapsed = time.monotonic() - begin
    q = statistics.quantiles(latencies, n=100)
    return {
        "messages": len(latencies),
        "messages_per_s": len(latencies) / elapsed,
        "p50_ms": q[49],
        "p95_ms": q[94],
        "p99_ms": q[98],
    }


async def measure(base: str, senders: int, seconds: float, max_messages: int, rounds: int) -> dict[str, list[dict]]:
    """Both channels' customers made once (the widget's hellos have a per-address budget) and warmed up
    for 2 s each, then measured in turns, REST then web, ``rounds`` times: a machine busy with other
    work in one stretch of time weighs on both alike."""
    opened: list = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        customers = {
            "rest": [rest_customer(http, base, f"bench-{n}") for n in range(senders)],
            "web": list(await asyncio.gather(*(web_customer(http, base, opened) for _ in range(senders)))),
        }
        try:
            first = {kind: await opening(c) for kind, c in customers.items()}
            for c in customers.values():
                await drive(c, 2.0, max_messages)
            results: dict[str, list[dict]] = {"rest": [], "web": []}
            for _ in range(rounds):
                for kind, c in customers.items():
                    results[kind].append({**await drive(c, seconds, max_messages), "first_p50_ms": first[kind]})
            return results
        finally:
            for ws in opened:
                await ws.close()


def report(name: str, r: dict) -> None:
    print(
        f"{name:<26} {r['messages_per_s']:8.0f} msg/s   p50 {r['p50_ms']:7.2f} ms   p95 {r['p95_ms']:7.2f} ms   "
        f"p99 {r['p99_ms']:7.2f} ms   ({r['messages']} messages; first message p50 {r['first_p50_ms']:.1f} ms)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", "--conversations", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-messages", type=int, default=500, help="per customer and channel")
    parser.add_argument("--rounds", type=int, default=2, help="measurements of each channel, in turns")
    parser.add_argument("--no-messengers", action="store_true", help="leave Telegram and VK out")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="seamline-bench-channels-")
    process, port = start_seamline(workdir)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_up(base, process)
        print(
            f"{args.senders} concurrent customers per channel, {args.seconds:.0f} s each, one seamline run "
            f"(SQLite, in-process sessions), {os.cpu_count()} cores"
        )
        results = await measure(base, args.senders, args.seconds, args.max_messages, args.rounds)
        for n, (rest, web) in enumerate(zip(results["rest"], results["web"], strict=True), 1):
            report(f"round {n}: REST (POST)", rest)
            report(f"round {n}: web chat (WS)", web)
            print(
                f"round {n}: ratio REST / web chat: {rest['messages_per_s'] / web['messages_per_s']:.2f} msg/s, "
                f"{rest['p50_ms'] / web['p50_ms']:.2f} p50"
            )
    finally:
        process.terminate()
        process.wait(timeout=30)
    if not args.no_messengers:
        sys.path[:0] = [str(ROOT), str(HERE)]
        import telegram_load
        import vk_load

        for name, run in (("telegram (long poll)", telegram_load.run), ("vk (bots long poll)", vk_load.run)):
            figures = await run(args.senders, args.seconds)
            print(
                f"{name:<26} {figures['messages_per_s']:8.0f} msg/s   p50 {figures['p50_ms']:7.2f} ms   "
                f"p99 {figures['p99_ms']:7.2f} ms   (its own seamline run and fake)"
            )


if __name__ == "__main__":
    asyncio.run(main())
