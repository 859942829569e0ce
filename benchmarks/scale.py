"""Scale-out: `seamline run --workers N` on PostgreSQL + Redis, 500 conversations on three channels.

    python benchmarks/scale.py [--workers 1,2,4] [--conversations 500] [--seconds 20] [--pace 3]
                               [--sessions 100000] [--profile FILE] [--memory-only] [--template FILE]

For each N: a fresh PostgreSQL database (schema by `seamline db upgrade`) and a flushed Redis
database, `seamline run --workers N` on a free port of 127.0.0.1 with Telegram in webhook mode
against the fake Bot API and VK on the Callback API against the fake VK API (tests/fakes/; aiogram and
vk_api talk to them), the widget on its WebSocket. The customers (benchmarks/scale_load.py) are split
evenly over the three channels; each writes, waits for the answer and pauses ``pace`` seconds on
average. Printed per N: messages/s, p50/p99 latency (sent -> answer seen at the fake or the socket),
and the CPU time (user + system, /proc/<pid>/stat) of every Seamline process (the supervisor and
its workers) in the measured window divided by the messages answered in it. The same load against
the bare aiohttp server of benchmarks/scale_echo.py is the baseline of the same run.

Then Redis memory per idle conversation: sessions shaped like real ones (the largest of a few
conversations the benchmark made talk four turns on the widget, read back from Redis) are written
``--sessions`` times through RedisSessionStore with fresh customer ids, into an empty Redis database;
INFO memory's used_memory delta is divided by their number. Printed beside it: the CPU of turning
that session into its stored value and back (RedisSessionStore's encode/decode) and of plain JSON.
``--memory-only`` runs just this part (one 1-worker server to make the sessions, no load);
``--template FILE`` reads the session to copy from FILE, or writes it there when FILE is missing, so a
later run measures the same session without any server:
    python benchmarks/scale.py --memory-only --template /tmp/session.json

Redis and PostgreSQL: SEAMLINE_TEST_REDIS_URL / SEAMLINE_TEST_DATABASE_URL when both are set (as
under tests/services.sh), else started here (benchmarks/scale_services.py). Redis databases 13 and
14 of that server are flushed. Every temporary folder is removed; every process started is stopped.
Bounded: about 1 minute per N plus the memory part; each wait has a limit. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from redis.asyncio import Redis  # noqa: E402
from scale_load import CHANNELS, TEXTS, Target, WatchedVk, drive  # noqa: E402
from scale_services import free_port, fresh_database, redis_db, services  # noqa: E402

from seamline.shared.session import Session  # noqa: E402
from seamline.shared.storage.redis_sessions import RedisSessionStore, decode, encode  # noqa: E402

from tests.fakes.telegram import TOKEN, FakeTelegram  # noqa: E402

START_TIMEOUT = 180.0  # four workers loading the model on two busy cores
STOP_TIMEOUT = 20.0
LOAD_DB, MEMORY_DB = 13, 14


def _seamline() -> list[str]:
    script = Path(sys.executable).with_name("seamline")
    return [str(script)] if script.exists() else [sys.executable, "-m", "seamline.bots.cli"]


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (the supervisor and its workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds these processes have used (the living ones)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


class Server:
    """A server process in its own process group, its output in a file; always stopped."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def wait_ready(self, base: str, workers: int) -> None:
        """Until every worker serves (the line `seamline run` prints then) and /healthz answers."""
        deadline = time.monotonic() + START_TIMEOUT
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise SystemExit(f"the server exited ({self.process.returncode}):\n{self.output()[-3000:]}")
                if workers == 0 or "is running" in self.output():
                    try:
                        async with http.get(f"{base}/healthz", timeout=aiohttp.ClientTimeout(total=2)) as answer:
                            if answer.status == 200:
                                return
                    except (aiohttp.ClientError, TimeoutError):
                        pass
                await asyncio.sleep(0.2)
        raise SystemExit(f"the server did not serve in {START_TIMEOUT:.0f} s:\n{self.output()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                for pid in descendants(self.process.pid):
                    os.kill(pid, signal.SIGKILL)
                self.process.wait()


def _figures(label: str, tally, elapsed: float, cpu: float, processes: int) -> dict:
    every = sorted(latency for channel in CHANNELS for latency in tally.latencies[channel])
    answered = len(every)
    q = statistics.quantiles(every, n=100) if answered >= 2 else [float("nan")] * 99
    return {
        "label": label,
        "messages": answered,
        "per_s": answered / elapsed,
        "p50": q[49],
        "p99": q[98],
        "p99_by_channel": {
            c: statistics.quantiles(tally.latencies[c], n=100)[98] if len(tally.latencies[c]) >= 2 else float("nan")
            for c in CHANNELS
        },
        "cpu_ms": 1000 * cpu / answered if answered else float("nan"),
        "cores": cpu / elapsed,
        "lost": sum(tally.lost.values()),
        "refused": tally.refused,
        "processes": processes,
    }


async def _measure(server: Server, target: Target, args: argparse.Namespace, label: str) -> dict:
    readings: list[float] = []
    pids: list[int] = []

    def mark() -> None:
        if not pids:
            pids.extend(descendants(server.process.pid))
        readings.append(cpu_seconds(pids))

    tally, elapsed = await drive(target, args.conversations, args.seconds, args.pace, mark)
    if server.process.poll() is not None:
        raise SystemExit(f"{label}: the server exited during the run:\n{server.output()[-3000:]}")
    return _figures(label, tally, elapsed, readings[-1] - readings[0], len(pids))


async def _sample_sessions(base: str, count: int = 5) -> None:
    """``count`` widget conversations of four turns each: the idle sessions the memory part copies."""
    ws_url = base.replace("http", "ws", 1) + "/chat/ws"
    async with aiohttp.ClientSession() as http:
        for n in range(count):
            headers = {"X-Forwarded-For": f"10.255.0.{n + 1}"}
            async with http.ws_connect(ws_url, headers=headers) as ws:
                await ws.send_json({"type": "hello", "token": None})
                await ws.receive_json(timeout=15)
                for turn, text in enumerate(["hi", TEXTS[1], TEXTS[2], TEXTS[3]]):
                    await ws.send_json({"type": "message", "id": f"sample{n}-{turn}", "text": text})
                    while (await ws.receive_json(timeout=15)).get("role") != "bot":
                        pass


async def _few_turn_session(redis_url: str) -> tuple[dict, list[int]]:
    """The largest of the sessions with the fewest events (the sampled four-turn ones), and the sizes
    in bytes of every session the run left."""
    client = Redis.from_url(redis_url)
    try:
        found: list[tuple[int, int, dict]] = []
        async for key in client.scan_iter(match="*session:*", count=1000):
            raw = await client.get(key)
            if raw is None:
                continue
            try:
                data = decode(raw)
            except (ValueError, zlib.error):
                continue
            if isinstance(data, dict) and "customer_id" in data:
                found.append((len(data.get("events", [])), len(raw), data))
    finally:
        await client.aclose()
    if not found:
        raise SystemExit("no sessions found in Redis after the run")
    found.sort(key=lambda item: item[0])
    few = found[: min(5, len(found))]
    return max(few, key=lambda item: item[1])[2], sorted(size for _e, size, _d in found)


def _like(value: str) -> str:
    """A fresh id of the same shape."""
    fresh = str(uuid.uuid4()) if len(value) == 36 and value.count("-") == 4 else uuid.uuid4().hex * 2
    return fresh[: len(value)] if len(value) <= len(fresh) else fresh


def _codec_cpu(template: dict, rounds: int = 2000) -> dict:
    """CPU microseconds to turn the session into its stored value and back (the best of 5 rounds,
    process time), beside plain ``json.dumps``/``json.loads`` (the format before compression)."""
    session = Session.from_dict(template)
    stored, plain = encode(session.to_dict()), json.dumps(session.to_dict()).encode()
    ways = {
        "save": lambda: encode(session.to_dict()),
        "load": lambda: Session.from_dict(decode(stored)),
        "save_json": lambda: json.dumps(session.to_dict()),
        "load_json": lambda: Session.from_dict(json.loads(plain)),
    }
    figures = {}
    for name, way in ways.items():
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            for _ in range(rounds):
                way()
            best = min(best, (time.process_time() - started) / rounds)
        figures[name] = best * 1e6
    return figures


async def session_memory(redis_url: str, template: dict, count: int) -> dict:
    """Bytes of Redis memory per idle session: ``count`` copies of ``template`` written through
    RedisSessionStore into an empty database."""
    client = Redis.from_url(redis_url)
    await client.flushdb()
    store = RedisSessionStore(client=client)
    before = (await client.info("memory"))["used_memory"]
    started = time.monotonic()
    try:
        for first in range(0, count, 50):
            batch = []
            for _ in range(first, min(first + 50, count)):
                data = dict(template)
                data["customer_id"] = _like(str(template["customer_id"]))
                data["conversation_id"] = _like(str(template["conversation_id"]))
                batch.append(store.save(Session.from_dict(data)))
            await asyncio.gather(*batch)
        after = (await client.info("memory"))["used_memory"]
        stored = await client.dbsize()
        await client.flushdb()
    finally:
        await store.close()
    return {
        "sessions": stored,
        "per_session": (after - before) / count,
        "json_bytes": len(json.dumps(Session.from_dict(template).to_dict())),
        "stored_bytes": len(encode(Session.from_dict(template).to_dict())),
        "turns": sum(1 for e in template.get("events", []) if e.get("event") == "user"),
        # where the bytes are: each field's share of the JSON, the largest first
        "fields": sorted(((len(json.dumps(v)), k) for k, v in template.items()), reverse=True)[:4],
        "events": len(template.get("events", [])),
        "seconds": time.monotonic() - started,
        "cpu_us": _codec_cpu(template),
    }


async def run_seamline(workers: int, args, workdir: Path, redis_base: str, database_base: str, memory: dict) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    redis_url = redis_db(redis_base, LOAD_DB)
    flush = Redis.from_url(redis_url)
    await flush.flushdb()
    await flush.aclose()
    telegram_secret, vk_secret = secrets.token_urlsafe(24), secrets.token_hex(12)
    async with fresh_database(database_base) as database, FakeTelegram() as telegram, WatchedVk(hold=1.0) as vk:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAMLINE_", "PROMETHEUS_"))}
        env.update(
            SEAMLINE_HOST="127.0.0.1",
            SEAMLINE_PORT=str(port),
            SEAMLINE_DATA_DIR=str(workdir / "data"),
            SEAMLINE_NLU_MODELS=str(workdir / "models"),
            SEAMLINE_DATABASE_URL=database,
            SEAMLINE_REDIS_URL=redis_url,
            SEAMLINE_SECRET_KEY=secrets.token_urlsafe(32),
            SEAMLINE_LOG_LEVEL="WARNING",
            SEAMLINE_WORKERS=str(workers),
            SEAMLINE_TELEGRAM_TOKEN=TOKEN,
            SEAMLINE_TELEGRAM_API_BASE=telegram.url,
            SEAMLINE_TELEGRAM_WEBHOOK_URL=f"{base}/telegram/webhook",
            SEAMLINE_TELEGRAM_WEBHOOK_SECRET=telegram_secret,
            SEAMLINE_VK_TOKEN=vk.token,
            SEAMLINE_VK_GROUP_ID=str(vk.group_id),
            SEAMLINE_VK_API_BASE=vk.url,
            SEAMLINE_VK_CONFIRMATION="benchconfirm",
            SEAMLINE_VK_SECRET=vk_secret,
            # the customers write far faster than people type, all from 127.0.0.1 (each says its own
            # address with X-Forwarded-For, as behind a proxy)
            SEAMLINE_WEB_RATE_LIMIT="0",
            SEAMLINE_WEB_ADDRESS_RATE_LIMIT="0",
            SEAMLINE_WEB_CONNECTIONS_PER_ADDRESS="0",
            SEAMLINE_TRUSTED_PROXIES="127.0.0.1",
        )
        upgrade = subprocess.run([*_seamline(), "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True)
        if upgrade.returncode != 0:
            raise SystemExit(f"seamline db upgrade failed:\n{upgrade.stdout}{upgrade.stderr}")
        command = [*_seamline(), "run", "--workers", str(workers)]
        if args.profile and workers == 1:  # cProfile writes its file when the server stops (SIGTERM)
            command = [sys.executable, "-m", "cProfile", "-o", args.profile, "-m", "seamline.bots.cli", "run"]
        server = Server(command, env, workdir / f"seamline-{workers}.log")
        try:
            await server.wait_ready(base, workers)
            target = Target(base, telegram, vk, telegram_secret, vk_secret)
            figures: dict = {}
            if not args.memory_only:
                figures = await _measure(server, target, args, f"seamline, {workers} worker{'s' * (workers > 1)}")
            if not memory:  # the first run also makes the sessions the memory part copies
                info = await _redis_info(redis_url)
                await _sample_sessions(base)
                memory["template"], memory["sizes"] = await _few_turn_session(redis_url)
                memory["after_run"] = info / max(1, args.conversations)
            return figures
        finally:
            server.stop()


async def _redis_info(url: str) -> int:
    client = Redis.from_url(url)
    try:
        return int((await client.info("memory"))["used_memory"])
    finally:
        await client.aclose()


async def run_echo(args, workdir: Path) -> dict:
    port = free_port()
    async with FakeTelegram() as telegram, WatchedVk(hold=1.0) as vk:
        command = [sys.executable, str(Path(__file__).with_name("scale_echo.py")), str(port), telegram.url, vk.url]
        server = Server([*command, vk.token], dict(os.environ), workdir / "echo.log")
        try:
            await server.wait_ready(f"http://127.0.0.1:{port}", 0)
            target = Target(f"http://127.0.0.1:{port}", telegram, vk, "", "")
            return await _measure(server, target, args, "bare aiohttp echo, 1 process")
        finally:
            server.stop()


def _print_table(rows: list[dict], args) -> None:
    print(
        f"\n{args.conversations} conversations ({len(CHANNELS)} channels), a message every ~{args.pace:g} s each, "
        f"{args.seconds:g} s measured, {os.cpu_count()} cores shared with the load generator, Redis and PostgreSQL"
    )
    print(
        f"{'':32} {'msg/s':>7} {'p50 ms':>8} {'p99 ms':>8}  {'p99 tg/vk/web ms':>20} {'CPU ms/msg':>11} "
        f"{'cores':>6} {'late':>5} {'refused':>8}"
    )
    for row in rows:
        by = "/".join(f"{row['p99_by_channel'][c]:.0f}" for c in CHANNELS)
        print(
            f"{row['label']:32} {row['per_s']:7.0f} {row['p50']:8.1f} {row['p99']:8.1f}  {by:>20} "
            f"{row['cpu_ms']:11.2f} {row['cores']:6.2f} {row['lost']:5d} {row['refused']:8d}"
        )
    print("targets: <= 2 ms worker CPU per message, not growing with workers; p99 <= 100 ms at 1 worker")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts to run, e.g. 1,2,4")
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pace", type=float, default=3.0, help="mean seconds between a customer's messages")
    parser.add_argument("--sessions", type=int, default=100_000, help="idle sessions for the memory figure (0: skip)")
    parser.add_argument(
        "--memory-only", action="store_true", help="only the memory part (one 1-worker server, no load)"
    )
    parser.add_argument("--template", help="read the memory part's session from this JSON file (written when missing)")
    parser.add_argument("--profile", help="run the 1-worker server under cProfile, its statistics written to this file")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    if not (all(1 <= n <= 8 for n in counts) and 3 <= args.conversations <= 2000 and 1 <= args.seconds <= 60):
        raise SystemExit("bounds: 1..8 workers, 3..2000 conversations, 1..60 seconds")
    if not (0.1 <= args.pace <= 60 and 0 <= args.sessions <= 200_000):
        raise SystemExit("bounds: a pace of 0.1..60 s, up to 200000 sessions")
    workdir = Path(tempfile.mkdtemp(prefix="seamline-scale-"))
    try:
        with services() as (redis_base, database_base):
            env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMLINE_")}
            env.update(SEAMLINE_DATA_DIR=str(workdir / "data"), SEAMLINE_NLU_MODELS=str(workdir / "models"))
            rows, memory = [], {}
            if args.template and Path(args.template).exists():
                memory["template"] = json.loads(Path(args.template).read_text())
                memory["sizes"], memory["after_run"] = [len(json.dumps(memory["template"]))], float("nan")
            if not (args.memory_only and memory):
                subprocess.run([*_seamline(), "nlu", "train"], cwd=ROOT, env=env, check=True, capture_output=True)
            for workers in [1] if args.memory_only else counts:
                if args.memory_only and memory:
                    break
                try:  # a run that fails says why, and the others (and the baseline) still run
                    rows.append(await run_seamline(workers, args, workdir, redis_base, database_base, memory))
                except SystemExit as failure:
                    print(f"\n{workers} worker(s): no figures: {failure}", file=sys.stderr)
                    continue
                if not args.memory_only:
                    _print_table(rows[-1:], args)
            if args.template and memory and not Path(args.template).exists():
                Path(args.template).write_text(json.dumps(memory["template"]))
            if not args.memory_only:
                rows.append(await run_echo(args, workdir))
                _print_table(rows, args)
            if args.profile and Path(args.profile).exists():
                import pstats

                print(f"\nwhere the 1-worker server's time went ({args.profile}), by own time:")
                pstats.Stats(args.profile).sort_stats("tottime").print_stats(25)
            if args.sessions and memory:
                figures = await session_memory(redis_db(redis_base, MEMORY_DB), memory["template"], args.sessions)
                sizes = memory["sizes"]
                print(
                    f"\nRedis per idle session ({figures['turns']} turns, {figures['json_bytes']} bytes of JSON, "
                    f"{figures['stored_bytes']} bytes stored): "
                    f"{figures['per_session']:.0f} bytes over {figures['sessions']} sessions (target <= 4096)"
                )
                cpu = figures["cpu_us"]
                print(
                    f"CPU per session save (to_dict + encode) {cpu['save']:.0f} us, load (decode + from_dict) "
                    f"{cpu['load']:.0f} us; as plain JSON {cpu['save_json']:.0f} / {cpu['load_json']:.0f} us"
                )
                print(
                    f"its JSON: {figures['events']} events; largest fields "
                    + ", ".join(f"{name} {size} bytes" for size, name in figures["fields"])
                )
                if not args.memory_only:  # with --memory-only no load ran
                    print(
                        f"sessions the load left (many turns): median {statistics.median(sizes):.0f} bytes, "
                        f"largest {sizes[-1]} bytes stored; Redis used_memory after the 1-worker run "
                        f"{memory['after_run']:.0f} bytes per conversation (everything: sessions, dedupe keys, inbox...)"
                    )
            for db in (LOAD_DB, MEMORY_DB):
                client = Redis.from_url(redis_db(redis_base, db))
                await client.flushdb()
                await client.aclose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
