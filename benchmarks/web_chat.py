"""Web chat throughput and latency against a running Seamline, beside a bare aiohttp echo server.

    python benchmarks/web_chat.py [--conversations 64] [--seconds 10] [--url ws://host:port/chat/ws]

Without --url it starts `seamline run` on embedded defaults (SQLite, in-process sessions) in a
temporary directory, after training the intent model into it (a fresh clone has none); the
directory is removed at the end, and the server stopped, whatever happens. In the same run it starts a bare aiohttp WebSocket echo server and drives it
the same way, then prints messages/s and p50/p99 latency of both and their ratio. Each
conversation sends a message and waits for the bot's answer (or the echo) before the next one.
Bounded: it stops after --seconds of measurement per target. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from texts import TEXTS  # benchmarks/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parent.parent

ECHO_SERVER = """
import sys
from aiohttp import web, WSMsgType

async def ws(request):
    sock = web.WebSocketResponse()
    await sock.prepare(request)
    async for msg in sock:
        if msg.type == WSMsgType.TEXT:
            await sock.send_str(msg.data)
    return sock

app = web.Application()
app.router.add_get("/ws", ws)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_up(
    url: str, seconds: float = 60, process: subprocess.Popen | None = None, log: Path | None = None
) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                output = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
                raise SystemExit(f"the server exited ({process.returncode}) before serving:\n{output}")
            try:
                async with http.ws_connect(url) as ws:
                    await ws.close()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.2)
    raise SystemExit(f"server at {url} did not come up in {seconds}s")


async def drive(url: str, conversations: int, seconds: float, seamline: bool) -> tuple[int, list[float], float]:
    latencies: list[float] = []
    first_latencies: list[float] = []
    stop_at = 0.0
    started = asyncio.Event()

    async def conversation(n: int, http: aiohttp.ClientSession) -> None:
        headers = {"X-Forwarded-For": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"} if seamline else None
        async with http.ws_connect(url, headers=headers) as ws:
            if seamline:
                await ws.send_json({"type": "hello", "token": None})
                assert (await ws.receive_json())["type"] == "welcome"
                # The first message creates the customer; it is measured apart (first_latencies).
                first = time.perf_counter()
                await ws.send_str(json.dumps({"type": "message", "id": f"b{n}-first", "text": "hi"}))
                while json.loads((await ws.receive()).data).get("role") != "bot":
                    pass
                first_latencies.append((time.perf_counter() - first) * 1000)
            await started.wait()
            i = 0
            while time.monotonic() < stop_at:
                text = TEXTS[(n + i) % len(TEXTS)]
                frame = {"type": "message", "id": f"b{n}-{i}", "text": text}
                sent = time.perf_counter()
                await ws.send_str(json.dumps(frame))
                while True:  # Seamline: echo of the customer message, then the bot's answer
                    answer = json.loads((await ws.receive()).data)
                    if answer.get("type") == "error":
                        raise SystemExit(f"the server answered with an error: {answer}")
                    if not seamline or answer.get("role") == "bot":
                        break
                if time.monotonic() < stop_at:
                    latencies.append((time.perf_counter() - sent) * 1000)
                i += 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        tasks = [asyncio.create_task(conversation(n, http)) for n in range(conversations)]
        while len(first_latencies) < conversations and seamline:  # every customer exists before the clock starts
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        begin = time.monotonic()
        stop_at = begin + seconds
        started.set()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - begin
    if first_latencies:
        print(
            f"{'  first message (new customer)':<22}  p50 {statistics.median(first_latencies):7.2f} ms   "
            f"max {max(first_latencies):7.2f} ms"
        )
    return len(latencies), latencies, elapsed


def figures(count: int, latencies: list[float], elapsed: float) -> dict:
    q = statistics.quantiles(latencies, n=100)
    return {"messages_per_s": count / elapsed, "p50_ms": q[49], "p99_ms": q[98], "messages": count}


def report(name: str, count: int, latencies: list[float], elapsed: float) -> float:
    result = figures(count, latencies, elapsed)
    print(
        f"{name:<22} {result['messages_per_s']:10.0f} msg/s   p50 {result['p50_ms']:7.2f} ms   "
        f"p99 {result['p99_ms']:7.2f} ms   ({count} messages)"
    )
    return result["messages_per_s"]


def start_seamline(workdir: str) -> tuple[subprocess.Popen, str]:
    """`seamline run` on embedded defaults in ``workdir``; (process, ws URL). Its output goes to
    ``workdir``/seamline.log (shown if it dies)."""
    port = free_port()
    # Nothing of the caller's SEAMLINE_* settings (a config dir, a models folder, a token, Redis):
    # the server is the repository's retail project on embedded defaults, everything in ``workdir``.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMLINE_")}
    env.update(
        {
            "SEAMLINE_PORT": str(port),
            "SEAMLINE_HOST": "127.0.0.1",
            "SEAMLINE_DATA_DIR": workdir,
            "SEAMLINE_NLU_MODELS": f"{workdir}/models",
            "SEAMLINE_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/bench.db",
            "SEAMLINE_LOG_LEVEL": "WARNING",
            # one benchmark conversation sends far faster than a person types
            "SEAMLINE_WEB_RATE_LIMIT": "0",
            "SEAMLINE_WEB_ADDRESS_RATE_LIMIT": "0",
            # every conversation comes from 127.0.0.1, so each says (X-Forwarded-For, as behind a proxy)
            # which address it is from: from one address, the hellos per minute (120) would refuse some of
            # the warm-up's and the measured run's together, and that conversation would wait forever
            "SEAMLINE_TRUSTED_PROXIES": "127.0.0.1",
        }
    )
    # `seamline run` answers with a trained intent model only: train it into the data dir first.
    trained = subprocess.run(
        [sys.executable, "-m", "seamline.bots.cli", "nlu", "train"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if trained.returncode != 0 or not list(Path(workdir, "models").glob("*")):
        raise SystemExit(f"seamline nlu train failed ({trained.returncode}):\n{trained.stdout}{trained.stderr}")
    with open(Path(workdir, "seamline.log"), "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "seamline.bots.cli", "run"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, f"ws://127.0.0.1:{port}/chat/ws"


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def run(conversations: int, seconds: float) -> dict:
    """The web chat figures of a fresh `seamline run`, for benchmarks/channels.py."""
    workdir = tempfile.mkdtemp(prefix="seamline-bench-")
    try:
        process, url = start_seamline(workdir)
        try:
            await wait_up(url, process=process, log=Path(workdir, "seamline.log"))
            await drive(url, conversations, 2.0, seamline=True)  # warm up
            return figures(*await drive(url, conversations, seconds, True))
        finally:
            stop(process)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--url", help="ws:// URL of a running Seamline's /chat/ws (default: start one)")
    args = parser.parse_args()

    processes = []
    workdir = tempfile.mkdtemp(prefix="seamline-bench-")
    try:
        url = args.url
        if not url:
            process, url = start_seamline(workdir)
            processes.append(process)
            await wait_up(url, process=process, log=Path(workdir, "seamline.log"))
        else:
            await wait_up(url)
        echo_port = free_port()
        processes.append(subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(echo_port)]))
        echo_url = f"ws://127.0.0.1:{echo_port}/ws"
        await wait_up(echo_url)

        print(f"{args.conversations} concurrent conversations, {args.seconds:.0f} s each, on {os.cpu_count()} cores")
        await drive(url, args.conversations, 2.0, seamline=True)  # warm up
        seamline = report("seamline (embedded)", *await drive(url, args.conversations, args.seconds, True))
        await drive(echo_url, args.conversations, 1.0, seamline=False)
        echo = report("bare aiohttp echo", *await drive(echo_url, args.conversations, args.seconds, False))
        print(f"ratio seamline / echo: {seamline / echo:.2f}   (target >= 0.35; p99 target <= 50 ms)")
    finally:
        for process in processes:
            stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
