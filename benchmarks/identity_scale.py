"""Per-message cost of identity resolution and session load/save with 1k and with 100k customers.

    python benchmarks/identity_scale.py                          # SQLite (temporary files), in-process sessions
    bash tests/services.sh .venv/bin/python benchmarks/identity_scale.py --postgres-from-env
                                                                 # ... and PostgreSQL + Redis from tests/services.sh
    python benchmarks/identity_scale.py --postgres URL --redis URL [--skip-sqlite]

The issue's target: finding who wrote and loading/saving their session stay O(1) in the number of
customers: under 1.5x growth of the per-message cost from 1k to 100k customers.

Per backend, two databases are migrated and filled, one with --small and one with --large
customers, by bulk inserts straight into the tables (a customer, its Telegram identity, a
conversation and one message each), and every customer gets a session in the session store
(in-process, or Redis: a separate Redis database number for each population). Then, measured on
randomly chosen EXISTING customers spread over the whole population:

- resolve: ``SqlChatStore.resolve_customer`` with the identity cache off (``cache_size=0``), so
  every call is a database lookup;
- session: ``sessions.lock`` + ``load`` + ``save`` of that customer's session;
- pipeline cold / warm: the whole ``Pipeline.handle`` of "hello" (understanding, the durable
  writes, the reply to a recording adapter) from customers this process has not seen yet (so the
  identity cache misses), then from the same customers again (cached).

The machine may be shared and its load changes within a run, so the two populations are measured
in alternating rounds inside one process and each figure compares against the other of the
same run. PostgreSQL works in two scratch databases with unique names, dropped after; in Redis
only the sessions made here are written and they are deleted after. Bounded: the population is
bulk inserts and every measurement is a fixed number of messages; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sqlalchemy import insert, text  # noqa: E402

from seamline.shared.history import new_id  # noqa: E402
from seamline.shared.message import Message, Reply, utcnow  # noqa: E402
from seamline.shared.session import Session  # noqa: E402
from seamline.shared.settings import CONFIG_DIR, Settings  # noqa: E402
from seamline.shared.storage.database import create_engine, upgrade  # noqa: E402
from seamline.shared.storage.models import ConversationRow, CustomerRow, IdentityRow, MessageRow  # noqa: E402

CHUNK = 5_000  # rows per executemany
SENDER_BASE = 700_000_000  # Telegram user ids of the customers made here: SENDER_BASE + n
ROUNDS = 10
WARMUP = 100  # resolve + session calls per population before measuring (connections, code paths)
MEASURES = (
    "resolve (no cache)",
    "session lock+load+save",
    "resolve + session",
    "pipeline, cold identity cache",
    "pipeline, warm identity cache",
)


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def stats(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]  # noqa: E731
    return sum(ordered) / len(ordered), pick(0.50), pick(0.99)


@dataclass
class Population:
    size: int
    settings: Settings
    ids: list[str] = field(default_factory=list)  # customer n: ids[n], Telegram user SENDER_BASE + n
    conversations: list[str] = field(default_factory=list)
    samples: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MEASURES})  # µs per message
    seamline: object = None
    uncached: object = None
    fresh: list[int] = field(default_factory=list)  # customers not yet sent through the pipeline


# -- filling ------------------------------------------------------------------------------------------------


async def populate(population: Population) -> float:
    """Customers 0 .. size - 1 as rows straight into the tables, CHUNK at a time; returns seconds."""
    started, now = time.perf_counter(), utcnow()
    engine = create_engine(population.settings.database_url)
    try:
        for first in range(0, population.size, CHUNK):
            customers, identities, threads, messages = [], [], [], []
            for n in range(first, min(population.size, first + CHUNK)):
                customer_id, conversation_id, sender = new_id(), new_id(), str(SENDER_BASE + n)
                population.ids.append(customer_id)
                population.conversations.append(conversation_id)
                customers.append(
                    {
                        "id": customer_id,
                        "name": f"Customer {n}",
                        "language": "en",
                        "last_channel": "telegram",
                        "attributes": {},
                        "attribute_meta": {},
                        "created_at": now,
                        "last_seen_at": now,
                    }
                )
                identities.append(
                    {
                        "customer_id": customer_id,
                        "channel": "telegram",
                        "external_id": sender,
                        "address": sender,
                        "reachable": True,
                        "created_at": now,
                        "link_failures": 0,
                    }
                )
                threads.append(
                    {
                        "id": conversation_id,
                        "customer_id": customer_id,
                        "state": "bot",
                        "queue": None,
                        "started_at": now,
                        "updated_at": now,
                        "closed_at": None,
                    }
                )
                messages.append(
                    {
                        "id": new_id(),
                        "conversation_id": conversation_id,
                        "customer_id": customer_id,
                        "channel": "telegram",
                        "direction": "in",
                        "role": "customer",
                        "text": "hello",
                        "payload": None,
                        "buttons": [],
                        "attachments": [],
                        "external_id": f"seed-{n}",
                        "identity": sender,
                        "intent": "greet",
                        "confidence": None,
                        "nlu": None,
                        "created_at": now,
                    }
                )
            async with engine.begin() as conn:
                for table, rows in (
                    (CustomerRow, customers),
                    (IdentityRow, identities),
                    (ConversationRow, threads),
                    (MessageRow, messages),
                ):
                    await conn.execute(insert(table.__table__), rows)
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))  # as autovacuum / a maintained database would have
    finally:
        await engine.dispose()
    return time.perf_counter() - started


def _session(population: Population, n: int) -> Session:
    return Session(
        customer_id=population.ids[n],
        conversation_id=population.conversations[n],
        language="en",
        last_channel="telegram",
        seen=[f"telegram:seed-{n}"],
    )


async def fill_sessions(population: Population) -> float:
    """A session for every customer, as if each had written before."""
    started, sessions = time.perf_counter(), population.seamline.sessions
    if not population.settings.redis_url:
        for n in range(population.size):
            await sessions.save(_session(population, n))
    else:
        # One pipelined SET per 1000 sessions, under the key the store reads (checked below): through
        # ``save`` one at a time, 100k sessions would take minutes on a loaded machine.
        from redis.asyncio import Redis

        client = Redis.from_url(population.settings.redis_url)
        try:
            for first in range(0, population.size, 1000):
                pipe = client.pipeline(transaction=False)
                for n in range(first, min(population.size, first + 1000)):
                    pipe.set(sessions._key(population.ids[n]), json.dumps(_session(population, n).to_dict()), ex=3600)
                await pipe.execute()
        finally:
            await client.aclose()
    for n in (0, population.size - 1):
        loaded = await sessions.load(population.ids[n])
        assert loaded is not None and loaded.conversation_id == population.conversations[n], (
            "sessions not stored (more than the in-process store holds, 100k?)"
        )
    return time.perf_counter() - started


async def drop_sessions(population: Population) -> None:
    if not population.settings.redis_url or not population.ids:
        return
    from redis.asyncio import Redis

    from seamline.bots.app import build_sessions

    sessions, client = build_sessions(population.settings), Redis.from_url(population.settings.redis_url)
    try:
        for first in range(0, len(population.ids), 1000):
            await client.delete(*(sessions._key(i) for i in population.ids[first : first + 1000]))
    finally:
        await client.aclose()
        await sessions.close()


# -- measuring ----------------------------------------------------------------------------------------------


class Discard:
    channel = "telegram"

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, address: str, reply: Reply) -> None:
        self.sent += 1


_message_ids = iter(range(1, 10**12))


def hello(n: int) -> Message:
    sender = str(SENDER_BASE + n)
    return Message(
        channel="telegram", address=sender, sender=sender, text="hello", external_id=f"bench-{next(_message_ids)}"
    )


async def resolve_and_session(population: Population, picks: list[int], record: bool) -> None:
    sessions = population.seamline.sessions
    for n in picks:
        sender = str(SENDER_BASE + n)
        t0 = time.perf_counter_ns()
        customer = await population.uncached.resolve_customer("telegram", sender, sender)
        t1 = time.perf_counter_ns()
        async with sessions.lock(customer.id):
            session = await sessions.load(customer.id)
            session.remember(f"telegram:probe-{next(_message_ids)}")
            await sessions.save(session)
        t2 = time.perf_counter_ns()
        assert customer.id == population.ids[n] and not customer.new, "resolved the wrong customer"
        if record:
            population.samples["resolve (no cache)"].append((t1 - t0) / 1000)
            population.samples["session lock+load+save"].append((t2 - t1) / 1000)
            population.samples["resolve + session"].append((t2 - t0) / 1000)


async def through_pipeline(population: Population, chosen: list[int]) -> None:
    for label in ("pipeline, cold identity cache", "pipeline, warm identity cache"):
        for n in chosen:
            t0 = time.perf_counter_ns()
            handled = await population.seamline.pipeline.handle(hello(n))
            population.samples[label].append((time.perf_counter_ns() - t0) / 1000)
            assert handled.inbound is not None and handled.inbound.customer_id == population.ids[n], "wrong customer"


async def compare(populations: list[Population], understanding, args, rng: random.Random) -> None:
    from seamline.bots.app import build
    from seamline.shared.storage.sql import SqlChatStore

    for population in populations:
        progress(f"  {population.size:,} customers in the database ({await populate(population):.1f} s)")
    try:
        for population in populations:
            population.seamline = await build(population.settings, understanding=understanding)
            population.seamline.pipeline.register(Discard())
            population.uncached = SqlChatStore(engine=population.seamline.store.engine, cache_size=0)
            progress(f"  {population.size:,} sessions in the session store ({await fill_sessions(population):.1f} s)")
            population.fresh = rng.sample(range(population.size), min(args.sample, population.size))
            await resolve_and_session(population, [rng.randrange(population.size) for _ in range(WARMUP)], False)
        gc.collect()
        for round_ in range(ROUNDS):
            for population in populations if round_ % 2 == 0 else reversed(populations):
                picks = [rng.randrange(population.size) for _ in range(args.messages // ROUNDS)]
                await resolve_and_session(population, picks, True)
                share = len(population.fresh) // (ROUNDS - round_)
                chosen, population.fresh = population.fresh[:share], population.fresh[share:]
                await through_pipeline(population, chosen)
            progress(f"  round {round_ + 1}/{ROUNDS} done")
    finally:
        for population in populations:
            if population.uncached is not None:
                await population.uncached.close()
            if population.seamline is not None:
                await population.seamline.close()
            await drop_sessions(population)


# -- backends -----------------------------------------------------------------------------------------------


async def _admin(dsn: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _redis_database(url: str, offset: int) -> str:
    """The same Redis server, another database number (0-15)."""
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(number + offset) % 16}"))


def run_backend(name: str, urls: list[str], redis_url: str, understanding, args) -> list[Population]:
    populations = []
    for size, url, offset in zip((args.small, args.large), urls, (1, 0), strict=True):
        settings = Settings(
            database_url=url,
            redis_url=_redis_database(redis_url, offset) if redis_url else "",
            secret_key="benchmark-secret-key-0123456789",
            config_dir=CONFIG_DIR,
            data_dir=Path(tempfile.gettempdir()),
        )
        upgrade(url)
        populations.append(Population(size=size, settings=settings))
    progress(f"{name}: schemas migrated")
    asyncio.run(compare(populations, understanding, args, random.Random(args.seed)))
    return populations


def report(name: str, small: Population, large: Population) -> list[str]:
    lines = [
        f"\n{name}: µs per message (mean / p50 / p99)",
        f"{'':<32}{small.size:>9,} customers{'':>6}{large.size:>9,} customers{'':>4}ratio of means, p50s",
    ]
    for measure in MEASURES:
        a, b = stats(small.samples[measure]), stats(large.samples[measure])
        lines.append(
            f"{measure:<32}{a[0]:>6.0f} /{a[1]:>6.0f} /{a[2]:>6.0f}"
            f"{'':>5}{b[0]:>6.0f} /{b[1]:>6.0f} /{b[2]:>6.0f}{'':>5}{b[0] / a[0]:>5.2f}  {b[1] / a[1]:>5.2f}"
        )
    counts = {m: len(small.samples[m]) for m in (MEASURES[0], MEASURES[3])}
    lines.append(
        f"({counts[MEASURES[0]]} resolve + session and 2 x {counts[MEASURES[3]]} pipeline messages per population)"
    )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1_000, help="customers in the small population (default 1000)")
    parser.add_argument("--large", type=int, default=100_000, help="customers in the large one (default 100000)")
    parser.add_argument("--messages", type=int, default=2_000, help="resolve + session measurements per population")
    parser.add_argument(
        "--sample",
        type=int,
        default=500,
        help="customers per population sending a message through the pipeline (twice)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", help="a PostgreSQL URL (postgresql+asyncpg://...) allowed to create databases")
    parser.add_argument("--redis", help="a Redis URL for the sessions (with --postgres)")
    parser.add_argument(
        "--postgres-from-env",
        action="store_true",
        help="take both from SEAMLINE_TEST_DATABASE_URL / SEAMLINE_TEST_REDIS_URL (tests/services.sh)",
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    if args.postgres_from_env:
        args.postgres = os.environ.get("SEAMLINE_TEST_DATABASE_URL")
        args.redis = os.environ.get("SEAMLINE_TEST_REDIS_URL")
        if not args.postgres or not args.redis:
            parser.error(
                "SEAMLINE_TEST_DATABASE_URL and SEAMLINE_TEST_REDIS_URL are not set: run through bash tests/services.sh"
            )
    if bool(args.postgres) != bool(args.redis):
        parser.error("give both --postgres and --redis")
    if not 0 < args.small < args.large or args.sample > args.small or args.messages < ROUNDS:
        parser.error("need 0 < --small < --large, --sample <= --small and --messages >= 10")

    from seamline.nlu.understanding import Understanding

    started = time.perf_counter()
    understanding = Understanding.from_config(CONFIG_DIR)
    progress(
        f"intent model trained on config/intents ({time.perf_counter() - started:.1f} s); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    lines = []
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(prefix="seamline-scale-") as tmp:
            urls = [f"sqlite+aiosqlite:///{tmp}/small.db", f"sqlite+aiosqlite:///{tmp}/large.db"]
            small, large = run_backend("SQLite", urls, "", understanding, args)
            lines += report("SQLite (WAL), in-process sessions", small, large)
    if args.postgres:
        names = [f"bench_{uuid.uuid4().hex[:12]}" for _ in range(2)]
        try:
            for name in names:
                asyncio.run(_admin(args.postgres, f'CREATE DATABASE "{name}"'))
            urls = [args.postgres.rsplit("/", 1)[0] + "/" + name for name in names]
            small, large = run_backend("PostgreSQL + Redis", urls, args.redis, understanding, args)
            lines += report("PostgreSQL + Redis sessions", small, large)
        finally:
            for name in names:
                asyncio.run(_admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print("\n".join(lines))
    print(
        f"\nload average at the end: {os.getloadavg()[0]:.1f}; "
        f"target: under 1.5x growth of the per-message cost from the small to the large population"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
