"""Handoff latency: customer → agent console, and agent → customer's channel, under load.

    python benchmarks/handoff.py [--conversations 200] [--agents 20] [--seconds 30] [--pace 10]
                                 [--database URL] [--redis URL]

Seamline runs as users run it: ``seamline run`` in its own OS process (the console script beside
this Python, else ``python -m bots.cli``), configured only through its SEAMLINE_* environment. The
load generator stays in this process: the fake Telegram Bot API of tests/fakes/telegram.py (which
the child's Telegram channel long polls), the agents' inbox WebSockets and REST calls, and the
simulated customers; so its own work no longer shares the server's event loop or CPU time slice.

Set-up, in a temporary directory: the repository's config/ is copied and its routing.yml rewritten
so that no queue has business hours (they would otherwise hold the escalations, depending on the
clock); the intent model is trained there once (``seamline nlu train``, SEAMLINE_NLU_MODELS);
``agents`` agents are created with ``seamline agents add --capacity 10`` (password from
SEAMLINE_AGENT_PASSWORD); the database is embedded SQLite in the directory unless ``--database`` names
one (e.g. PostgreSQL; ``seamline db upgrade`` is run on it), and sessions are in-process unless
``--redis`` names a Redis. Then ``seamline run`` starts on a free port of 127.0.0.1 (its output goes
to seamline.log in the directory, printed if it dies) and the benchmark waits for /healthz.
Each agent logs in (POST /api/v1/auth/login, an API token), goes online (POST /api/v1/me/status)
and opens the live inbox WebSocket (the token sent as the first frame). ``conversations`` Telegram
customers then each ask for a person, one at a time, and are assigned to the least busy agent
(watched through GET /api/v1/agents, whose loads are uncapped; who holds which chat comes from
GET /api/v1/conversations?state=with_agent&mine=1 per agent and GET /api/v1/conversations/{id},
whose customer lists the Telegram identity). Then, for ``seconds``, every conversation repeats,
pausing ``pace`` seconds on average (a person reading and typing; 0: flat out, which measures
saturation rather than latency): the customer writes (an update queued at the fake) and the time
until the holding agent's inbox WebSocket receives that "message" event is measured; then the
agent POSTs a reply to /api/v1/conversations/{id}/messages and the time until the fake records the
sendMessage of that text to that chat is measured. Target (the issue): p99 <= 50 ms for both.
The CPU time each process used during the measured window is printed too, and Seamline's CPU
time per message (both directions) beside the latency: a noisy run (a neighbour on the cores) has
the same CPU per message and a worse p99, a slower Seamline more CPU per message.
Bounded: each set-up step waits at most 60 s, an answer not seen in 10 s ends its conversation,
the child is always stopped (SIGTERM, SIGKILL after 10 s). Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the fake lives in tests/

import aiohttp  # noqa: E402
import yaml  # noqa: E402

from tests.fakes.telegram import TOKEN, Call, FakeTelegram  # noqa: E402

PASSWORD = "correct horse load 0123"  # nothing of the agents' e-mail (bench.example) in it
CAPACITY = 10
ANSWER_TIMEOUT = 10.0
SETUP_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
FIRST_CHAT = 20_000


async def _until(check, what: str, timeout: float = SETUP_TIMEOUT, every: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise SystemExit(f"set-up: {what} not done in {timeout:.0f} s")
        await asyncio.sleep(every)


def _figures(latencies: list[float]) -> dict:
    if len(latencies) < 2:
        return {"count": len(latencies), "p50_ms": float("nan"), "p99_ms": float("nan")}
    q = statistics.quantiles(latencies, n=100)
    return {"count": len(latencies), "p50_ms": q[49], "p99_ms": q[98]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Child:
    """`seamline ...` commands and the `seamline run` server, all with the same SEAMLINE_* environment."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env = workdir, env
        script = Path(sys.executable).with_name("seamline")
        self.command = [str(script)] if script.exists() else [sys.executable, "-m", "seamline.bots.cli"]
        self.log = workdir / "seamline.log"
        self.process: subprocess.Popen | None = None

    async def call(self, *args: str, env: dict[str, str] | None = None) -> str:
        """A one-off command; its output, or SystemExit with it when it fails."""
        process = await asyncio.create_subprocess_exec(
            *self.command,
            *args,
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), SETUP_TIMEOUT)
        except BaseException as exc:  # too slow, or the benchmark is interrupted: the command goes too
            if process.returncode is None:
                process.kill()
                await asyncio.shield(process.wait())
            if isinstance(exc, TimeoutError):
                raise SystemExit(f"set-up: seamline {' '.join(args)} not done in {SETUP_TIMEOUT:.0f} s") from None
            raise
        text = out.decode(errors="replace")
        if process.returncode != 0:
            raise SystemExit(f"set-up: seamline {' '.join(args)} failed ({process.returncode}):\n{text}")
        return text

    def start(self) -> None:
        with open(self.log, "wb") as log:  # the child holds its own descriptor
            self.process = subprocess.Popen(
                [*self.command, "run"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def died(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    async def wait_up(self, base: str) -> None:
        async with aiohttp.ClientSession() as http:

            async def answers() -> bool:
                if self.died():
                    raise SystemExit(
                        f"seamline run exited ({self.process.returncode}) while starting:\n{self.output()}"
                    )
                try:
                    async with http.get(f"{base}/healthz", timeout=aiohttp.ClientTimeout(total=2)) as response:
                        return response.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    return False

            try:
                await _until(answers, "seamline run answering HTTP", every=0.1)
            except SystemExit:
                print(self.output(), file=sys.stderr)
                raise

    async def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)


async def _drive(
    child: Child,
    fake: FakeTelegram,
    base: str,
    emails: list[str],
    conversations: int,
    first_chat: int,
    seconds: float,
    pace: float,
) -> dict:
    loop = asyncio.get_running_loop()
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    readers: list[asyncio.Task] = []

    async def call(method: str, path: str, token: str, **kwargs) -> dict:
        async with http.request(
            method, f"{base}{path}", headers={"Authorization": f"Bearer {token}"}, **kwargs
        ) as response:
            if response.status >= 400:
                raise SystemExit(f"set-up: {method} {path} answered {response.status}: {await response.text()}")
            return await response.json()

    try:
        # Agents (created by `seamline agents add` before the server started): logged in through the API, online.
        tokens: dict[str, str] = {}
        for email in emails:
            async with http.post(
                f"{base}/api/v1/auth/login", json={"email": email, "password": PASSWORD, "kind": "api"}
            ) as response:
                response.raise_for_status()
                login = await response.json()
            if login["agent"]["capacity"] != CAPACITY:
                raise SystemExit(f"set-up: {email} has capacity {login['agent']['capacity']}, not {CAPACITY}")
            tokens[login["agent"]["id"]] = login["token"]
            await call("POST", "/api/v1/me/status", login["token"], json={"status": "online"})
        any_token = next(iter(tokens.values()))

        # What the fake sends, and what the consoles receive, resolve the futures waiting for them.
        sent: dict[tuple[str, str], asyncio.Future] = {}
        seen: dict[tuple[str, str], asyncio.Future] = {}

        def recorded(call: Call) -> None:
            if call.method == "sendMessage" and call.ok:
                future = sent.get((str(call.params.get("chat_id")), call.params.get("text")))
                if future is not None and not future.done():
                    future.set_result(time.monotonic())

        fake.listen(recorded)

        async def read(ws: aiohttp.ClientWebSocketResponse, agent_id: str) -> None:
            async for frame in ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    break
                event = frame.json()
                if event.get("type") == "message" and event["message"]["role"] == "customer":
                    future = seen.get((agent_id, event["message"]["text"]))
                    if future is not None and not future.done():
                        future.set_result(time.monotonic())

        for agent_id, token in tokens.items():
            ws = await http.ws_connect(f"{base}/api/v1/inbox", heartbeat=None)
            await ws.send_json({"type": "auth", "token": token})
            hello = await ws.receive_json(timeout=10)
            if hello.get("type") != "hello":
                raise SystemExit(f"inbox refused the agent: {hello}")
            sockets.append(ws)
            readers.append(asyncio.create_task(read(ws, agent_id)))

        # Customers: each asks for a person and is assigned (not measured). One at a time: escalations
        # handled at the same moment all go to the same least-busy agent (see docs/benchmarks.md).
        async def held_count() -> int:
            if child.died():
                raise SystemExit(f"seamline run exited ({child.process.returncode}):\n{child.output()}")
            listed = (await call("GET", "/api/v1/agents", any_token))["agents"]
            return sum(a["load"] for a in listed if a["id"] in tokens)

        for n, chat in enumerate(first_chat + n for n in range(conversations)):
            fake.enqueue(fake.update("message_text", chat_id=chat, text="I want to talk to a human"))

            async def assigned(count=n + 1) -> bool:
                return await held_count() >= count

            await _until(assigned, f"conversation {n + 1} assigned", every=0.01)
        held: dict[int, tuple[str, str]] = {}
        for agent_id, token in tokens.items():
            mine = (await call("GET", "/api/v1/conversations?state=with_agent&mine=1", token))["conversations"]
            for summary in mine:
                context = await call("GET", f"/api/v1/conversations/{summary['id']}", token)
                chats = [
                    int(i["external_id"])
                    for i in context["customer"]["identities"]
                    if i["channel"] == "telegram" and i["reachable"]
                ]
                if len(chats) == 1 and first_chat <= chats[0] < first_chat + conversations:
                    held[chats[0]] = (summary["id"], agent_id)
        if len(held) != conversations:
            raise SystemExit(f"set-up: {len(held)} of {conversations} conversations found held by the agents")
        loads = [sum(1 for _c, a in held.values() if a == agent_id) for agent_id in tokens]

        to_agent: list[float] = []
        to_customer: list[float] = []
        lost = 0
        stop_at = 0.0
        started = asyncio.Event()

        async def conversation(chat: int) -> None:
            nonlocal lost
            conversation_id, agent_id = held[chat]
            headers = {"Authorization": f"Bearer {tokens[agent_id]}"}
            await started.wait()
            rng = random.Random(chat)
            await asyncio.sleep(rng.uniform(0, pace))  # customers do not all write in the same instant
            i = 0
            try:
                while time.monotonic() < stop_at:
                    text = f"customer {chat} message {i}: where is my parcel?"
                    future = seen[(agent_id, text)] = loop.create_future()
                    begin = time.monotonic()
                    fake.enqueue(fake.update("message_text", chat_id=chat, text=text))
                    arrived = await asyncio.wait_for(future, ANSWER_TIMEOUT)
                    del seen[(agent_id, text)]
                    if arrived < stop_at:
                        to_agent.append((arrived - begin) * 1000)

                    reply = f"agent reply {i} to {chat}: it is on its way"
                    future = sent[(str(chat), reply)] = loop.create_future()
                    begin = time.monotonic()
                    async with http.post(
                        f"{base}/api/v1/conversations/{conversation_id}/messages", json={"text": reply}, headers=headers
                    ) as response:
                        response.raise_for_status()
                    arrived = await asyncio.wait_for(future, ANSWER_TIMEOUT)
                    del sent[(str(chat), reply)]
                    if arrived < stop_at:
                        to_customer.append((arrived - begin) * 1000)
                    i += 1
                    await asyncio.sleep(rng.uniform(0.5, 1.5) * pace)  # the customer reads and types
            except TimeoutError:
                lost += 1

        tasks = [asyncio.create_task(conversation(chat)) for chat in held]
        cpu_child, cpu_self = _cpu_seconds(child.process.pid), time.process_time()
        begin = time.monotonic()
        stop_at = begin + seconds
        started.set()
        await asyncio.sleep(seconds)  # the measured window; then the last answers are awaited
        cpu_child_after = _cpu_seconds(child.process.pid)
        cpu = {
            "generator": time.process_time() - cpu_self,
            "window": time.monotonic() - begin,
            "seamline": None if cpu_child is None or cpu_child_after is None else cpu_child_after - cpu_child,
        }
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - begin
        if child.died():
            raise SystemExit(f"seamline run exited ({child.process.returncode}) during the run:\n{child.output()}")
        return {
            "to_agent": _figures(to_agent),
            "to_customer": _figures(to_customer),
            "lost": lost,
            "elapsed": elapsed,
            "conversations": len(held),
            "agents": len(tokens),
            "load": (min(loads), max(loads)),
            "cpu": cpu,
        }
    finally:
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
        await http.close()


def _always_open(config: Path) -> None:
    """routing.yml of the copied config with every queue kept (its time zone too) but no business hours."""
    path = config / "routing.yml"
    routing = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    routing["queues"] = {
        name: {k: v for k, v in (spec or {}).items() if k != "hours"}
        for name, spec in (routing.get("queues") or {}).items()
    }
    path.write_text(
        "# benchmarks/handoff.py: config/routing.yml with every queue always open\n"
        + yaml.safe_dump(routing, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )


async def run(
    conversations: int,
    agents: int,
    seconds: float,
    pace: float = 10.0,
    database: str | None = None,
    redis: str | None = None,
) -> dict:
    with tempfile.TemporaryDirectory(prefix="seamline-handoff-bench-") as name:
        workdir = Path(name)
        config = workdir / "config"
        shutil.copytree(ROOT / "config", config)
        _always_open(config)
        # A database of one's own may hold earlier runs: this run's agents and chats are new ones.
        tag = secrets.token_hex(3)
        first_chat = FIRST_CHAT if database is None else FIRST_CHAT + random.randrange(1, 10**6) * 1000
        emails = [f"agent{n}-{tag}@bench.example" for n in range(agents)]
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        async with FakeTelegram() as fake:
            env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMLINE_")}
            env.update(
                {
                    "SEAMLINE_HOST": "127.0.0.1",
                    "SEAMLINE_PORT": str(port),
                    "SEAMLINE_CONFIG_DIR": str(config),
                    "SEAMLINE_DATA_DIR": str(workdir),
                    "SEAMLINE_NLU_MODELS": str(workdir / "models"),
                    "SEAMLINE_DATABASE_URL": database or f"sqlite+aiosqlite:///{workdir}/bench.db",
                    "SEAMLINE_REDIS_URL": redis or "",
                    "SEAMLINE_SECRET_KEY": secrets.token_urlsafe(32),
                    "SEAMLINE_LOG_LEVEL": "WARNING",
                    "SEAMLINE_TELEGRAM_TOKEN": TOKEN,
                    "SEAMLINE_TELEGRAM_API_BASE": fake.url,
                }
            )
            child = Child(workdir, env)
            await child.call("nlu", "train")
            await child.call("db", "upgrade")
            limit = asyncio.Semaphore(4)  # each is a short process; SQLite takes one writer at a time

            async def add(n: int, email: str) -> None:
                async with limit:
                    await child.call(
                        "agents",
                        "add",
                        email,
                        "--name",
                        f"Agent {n}",
                        "--queues",
                        "",
                        "--capacity",
                        str(CAPACITY),
                        env={"SEAMLINE_AGENT_PASSWORD": PASSWORD},
                    )

            await asyncio.gather(*(add(n, email) for n, email in enumerate(emails)))
            try:
                child.start()  # starts the channel: getMe, deleteWebhook, long polling the fake
                await child.wait_up(base)
                figures = await _drive(child, fake, base, emails, conversations, first_chat, seconds, pace)
                figures.update(pid=child.process.pid, command=" ".join(Path(c).name for c in child.command))
                return figures
            finally:
                await child.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--pace",
        type=float,
        default=10.0,
        help="mean seconds a customer takes to read and write the next message (0: flat out)",
    )
    parser.add_argument(
        "--database",
        help="SEAMLINE_DATABASE_URL for the server, e.g. "
        "postgresql+asyncpg://user:pass@127.0.0.1:5432/db (default: SQLite in "
        "a temporary directory); the schema is upgraded",
    )
    parser.add_argument(
        "--redis",
        help="SEAMLINE_REDIS_URL for the server, e.g. redis://127.0.0.1:6379/0 (default: in-process sessions)",
    )
    args = parser.parse_args()
    if not (1 <= args.conversations <= 1000 and 1 <= args.agents <= 100 and 0 < args.seconds <= 120):
        raise SystemExit("bounds: 1..1000 conversations, 1..100 agents, up to 120 seconds")
    if not 0 <= args.pace <= 600:
        raise SystemExit("bounds: a pace of 0..600 seconds")
    if args.conversations > args.agents * CAPACITY:
        raise SystemExit(f"{args.agents} agents of capacity {CAPACITY} hold at most {args.agents * CAPACITY}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    figures = await run(args.conversations, args.agents, args.seconds, args.pace, args.database, args.redis)
    storage = (
        "PostgreSQL"
        if args.database and "postgres" in args.database.split(":", 1)[0]
        else "SQLite"
        if not args.database or args.database.startswith("sqlite")
        else "database"
    )
    print(
        f"Seamline in its own process (`{figures['command']} run`, pid {figures['pid']}, {storage}, "
        f"{'Redis' if args.redis else 'in-process'} sessions); fake Bot API and load generator in this process"
    )
    print(
        f"{figures['conversations']} Telegram conversations held by {figures['agents']} agents "
        f"({figures['load'][0]}-{figures['load'][1]} each), {figures['elapsed']:.1f} s, a message every "
        f"~{args.pace:g} s per conversation"
    )
    for key, name in (("to_agent", "customer -> agent inbox WS"), ("to_customer", "agent reply -> sendMessage")):
        f = figures[key]
        print(f"{name:<28} {f['count']:6d} messages   p50 {f['p50_ms']:7.2f} ms   p99 {f['p99_ms']:7.2f} ms")
    print(f"conversations that lost an answer (10 s): {figures['lost']}")
    cpu = figures["cpu"]
    window = cpu["window"]
    seamline = "?" if cpu["seamline"] is None else f"{cpu['seamline']:.1f} s ({cpu['seamline'] / window:.0%} of a core)"
    print(
        f"CPU in the {window:.0f} s measured: seamline {seamline}, load generator {cpu['generator']:.1f} s "
        f"({cpu['generator'] / window:.0%} of a core)"
    )
    # Beside the latency: a run slowed by a neighbour on the cores shows the same CPU per message and
    # a worse p99; a run where Seamline itself got slower shows more CPU per message.
    handled = figures["to_agent"]["count"] + figures["to_customer"]["count"]
    if cpu["seamline"] is not None and handled:
        print(
            f"seamline CPU per message: {1000 * cpu['seamline'] / handled:.2f} ms "
            f"({handled} messages: customer -> agent and agent -> customer)"
        )


if __name__ == "__main__":
    asyncio.run(main())
