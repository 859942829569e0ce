"""Per-message cost of identity resolution and session load/save at 1k and at 100k customers.

    python benchmarks/identity_scale.py                          # SQLite (temporary file), in-process sessions
    bash tests/services.sh .venv/bin/python benchmarks/identity_scale.py --postgres-from-env
                                                                 # ... and PostgreSQL + Redis from tests/services.sh
    python benchmarks/identity_scale.py --postgres URL --redis URL [--skip-sqlite]

The issue's target: resolving who wrote and loading/saving their session stay O(1) in the number
of customers, under 1.5x growth of the per-message cost from 1k to 100k customers.

For each backend the database is migrated, then filled in two steps (to --small, then to --large
customers) with bulk inserts straight into the tables: a customer, its Telegram identity, a
conversation and two messages each, plus a session per customer in the session store. After each
step, measured on randomly chosen EXISTING customers spread over the whole table:

- resolve: ``SqlChatStore.resolve_customer`` with the identity cache off (``cache_size=0``), so
  every call is a database lookup;
- session: ``sessions.lock`` + ``load`` + ``save`` of that customer's session;
- pipeline cold / warm: the whole ``Pipeline.handle`` of "hello" (understanding, two durable
  writes, the reply to a recording adapter) from --sample distinct customers, first with a fresh
  process-local identity cache (every identity looked up), then the same customers again (cached).

PostgreSQL runs in a scratch database with a unique name, dropped after; Redis keys are only the
sessions of the customers made here, deleted after. Bounded: the population is bulk inserts and
every measurement is a fixed number of messages; progress goes to stderr.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sqlalchemy import insert, text  # noqa: E402

from shared.history import new_id  # noqa: E402
from shared.message import Channel, Message, Reply, utcnow  # noqa: E402
from shared.session import Session  # noqa: E402
from shared.settings import CONFIG_DIR, Settings  # noqa: E402
from shared.storage.database import upgrade  # noqa: E402
from shared.storage.models import ConversationRow, CustomerRow, IdentityRow, MessageRow  # noqa: E402

CHUNK = 5_000  # rows per executemany
CONCURRENCY = 50  # session writes in flight (within the Redis client's connection pool)
SENDER_BASE = 700_000_000  # Telegram user ids of the customers made here: SENDER_BASE + n


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@dataclass
class Figures:
    samples: dict[str, list[float]] = field(default_factory=dict)  # measure -> µs per message

    def add(self, measure: str, micros: float) -> None:
        self.samples.setdefault(measure, []).append(micros)


def stats(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]  # noqa: E731
    return sum(ordered) / len(ordered), pick(0.50), pick(0.99)


# -- population ---------------------------------------------------------------------------------------------

async def populate(engine, start: int, stop: int, ids: list[str], conversations: list[str]) -> None:
    """Customers ``start`` .. ``stop - 1``: rows straight into the tables, CHUNK at a time."""
    now = utcnow()
    for first in range(start, stop, CHUNK):
        last = min(stop, first + CHUNK)
        customers, identities, threads, messages = [], [], [], []
        for n in range(first, last):
            customer_id, conversation_id = new_id(), new_id()
            ids.append(customer_id)
            conversations.append(conversation_id)
            sender = str(SENDER_BASE + n)
            customers.append({"id": customer_id, "name": f"Customer {n}", "language": "en",
                              "last_channel": "telegram", "attributes": {}, "attribute_meta": {},
                              "created_at": now, "last_seen_at": now})
            identities.append({"customer_id": customer_id, "channel": "telegram", "external_id": sender,
                               "address": sender, "reachable": True, "created_at": now, "link_failures": 0})
            threads.append({"id": conversation_id, "customer_id": customer_id, "state": "bot", "queue": None,
                            "started_at": now, "updated_at": now, "closed_at": None})
            for direction, role, body, external in (("in", "customer", "hello", f"seed-{n}"),
                                                    ("out", "bot", "Hi! How can I help?", None)):
                messages.append({"id": new_id(), "conversation_id": conversation_id, "customer_id": customer_id,
                                 "channel": "telegram", "direction": direction, "role": role, "text": body,
                                 "payload": None, "buttons": [], "attachments": [], "external_id": external,
                                 "identity": sender, "intent": "greet" if direction == "in" else None,
                                 "confidence": None, "nlu": None, "created_at": now})
        async with engine.begin() as conn:
            for table, rows in ((CustomerRow, customers), (IdentityRow, identities),
                                (ConversationRow, threads), (MessageRow, messages)):
                await conn.execute(insert(table.__table__), rows)
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE"))  # as autovacuum / a maintained database would have


async def save_sessions(sessions, ids: list[str], conversations: list[str], start: int) -> None:
    async def one(n: int) -> None:
        await sessions.save(Session(customer_id=ids[n], conversation_id=conversations[n], language="en",
                                    last_channel="telegram", seen=[f"telegram:seed-{n}"]))

    for first in range(start, len(ids), CONCURRENCY):
        await asyncio.gather(*(one(n) for n in range(first, min(len(ids), first + CONCURRENCY))))


# -- measuring ----------------------------------------------------------------------------------------------

class Discard:
    channel = Channel.TELEGRAM

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, address: str, reply: Reply) -> None:
        self.sent += 1


_message_ids = iter(range(1, 10**12))


def hello(n: int) -> Message:
    sender = str(SENDER_BASE + n)
    return Message(channel=Channel.TELEGRAM, address=sender, sender=sender, text="hello",
                   external_id=f"bench-{next(_message_ids)}")


async def measure(settings: Settings, understanding, ids: list[str], conversations: list[str], *,
                  sessions_from: int, messages: int, sample: int, rng: random.Random, figures: Figures) -> None:
    """Sessions for customers ``sessions_from`` on (the others have theirs already), then the measures."""
    from bots.app import build
    from shared.storage.sql import SqlChatStore

    seamline = await build(settings, understanding=understanding)  # a fresh process-local identity cache
    adapter = Discard()
    seamline.pipeline.register(adapter)
    try:
        started = time.perf_counter()
        await save_sessions(seamline.sessions, ids, conversations, sessions_from)
        progress(f"  {len(ids)} sessions in the session store ({time.perf_counter() - started:.1f} s)")

        uncached = SqlChatStore(engine=seamline.store.engine, cache_size=0)
        picks = [rng.randrange(len(ids)) for _ in range(messages + 200)]
        for i, n in enumerate(picks):
            sender = str(SENDER_BASE + n)
            t0 = time.perf_counter_ns()
            customer = await uncached.resolve_customer("telegram", sender, sender)
            t1 = time.perf_counter_ns()
            async with seamline.sessions.lock(customer.id):
                session = await seamline.sessions.load(customer.id)
                session.remember(f"telegram:probe-{i}")
                await seamline.sessions.save(session)
            t2 = time.perf_counter_ns()
            assert customer.id == ids[n] and not customer.new
            if i >= 200:  # the first ones warm up connections and code paths
                figures.add("resolve (no cache)", (t1 - t0) / 1000)
                figures.add("session lock+load+save", (t2 - t1) / 1000)
                figures.add("resolve + session", (t2 - t0) / 1000)
        await uncached.close()
        progress(f"  resolve + session: {messages} messages")

        chosen = rng.sample(range(len(ids)), min(sample, len(ids)))
        for label in ("pipeline, cold identity cache", "pipeline, warm identity cache"):
            for n in chosen:
                t0 = time.perf_counter_ns()
                handled = await seamline.pipeline.handle(hello(n))
                figures.add(label, (time.perf_counter_ns() - t0) / 1000)
                assert handled.inbound is not None and handled.inbound.customer_id == ids[n], "wrong customer"
        assert adapter.sent >= 2 * len(chosen)
        progress(f"  pipeline: {2 * len(chosen)} messages")
    finally:
        await seamline.close()


# -- one backend --------------------------------------------------------------------------------------------

async def _admin(dsn: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _drop_sessions(settings: Settings, ids: list[str]) -> None:
    from bots.app import build_sessions

    sessions = build_sessions(settings)
    try:
        for first in range(0, len(ids), CONCURRENCY):
            await asyncio.gather(*(sessions.delete(i) for i in ids[first:first + CONCURRENCY]))
    finally:
        await sessions.close()


def run_backend(name: str, database_url: str, redis_url: str, understanding, args) -> dict[int, Figures]:
    from shared.storage.database import create_engine

    settings = Settings(database_url=database_url, redis_url=redis_url, secret_key="benchmark-secret-key-0123456789",
                        config_dir=CONFIG_DIR, data_dir=Path(tempfile.gettempdir()))
    started = time.perf_counter()
    upgrade(database_url)
    progress(f"{name}: schema migrated ({time.perf_counter() - started:.1f} s)")
    ids: list[str] = []
    conversations: list[str] = []
    results: dict[int, Figures] = {}
    rng = random.Random(args.seed)

    async def step(size: int) -> None:
        engine = create_engine(database_url)
        try:
            begun, before = time.perf_counter(), len(ids)
            await populate(engine, before, size, ids, conversations)
            progress(f"{name}: {size} customers in the database ({size - before} inserted in "
                     f"{time.perf_counter() - begun:.1f} s)")
        finally:
            await engine.dispose()
        results[size] = Figures()
        # In-process sessions live as long as one build: all are made again; Redis keeps the earlier ones.
        await measure(settings, understanding, ids, conversations, sessions_from=before if redis_url else 0,
                      messages=args.messages, sample=args.sample, rng=rng, figures=results[size])

    try:
        for size in (args.small, args.large):
            asyncio.run(step(size))
    finally:
        if redis_url and ids:
            asyncio.run(_drop_sessions(settings, ids))
    return results


def report(name: str, results: dict[int, Figures], small: int, large: int) -> list[str]:
    lines = [f"\n{name}: µs per message, {small:,} vs {large:,} customers (mean / p50 / p99)",
             f"{'measure':<32}{small:>8,} customers{'':>10}{large:>8,} customers{'':>9}ratio (mean, p50)"]
    for measure_name in results[small].samples:
        a, b = stats(results[small].samples[measure_name]), stats(results[large].samples[measure_name])
        lines.append(f"{measure_name:<32}{a[0]:>7.0f} /{a[1]:>6.0f} /{a[2]:>6.0f}"
                     f"{'':>6}{b[0]:>7.0f} /{b[1]:>6.0f} /{b[2]:>6.0f}{'':>6}{b[0] / a[0]:>5.2f}  {b[1] / a[1]:>5.2f}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1_000, help="customers in the first step (default 1000)")
    parser.add_argument("--large", type=int, default=100_000, help="customers in the second step (default 100000)")
    parser.add_argument("--messages", type=int, default=2_000, help="resolve + session measurements per step")
    parser.add_argument("--sample", type=int, default=500,
                        help="distinct customers sending a message through the pipeline per step (twice)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", help="a PostgreSQL URL (postgresql+asyncpg://...) allowed to create databases")
    parser.add_argument("--redis", help="a Redis URL for the sessions (with --postgres)")
    parser.add_argument("--postgres-from-env", action="store_true",
                        help="take both from SEAMLINE_TEST_DATABASE_URL / SEAMLINE_TEST_REDIS_URL (tests/services.sh)")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    if args.postgres_from_env:
        args.postgres = os.environ.get("SEAMLINE_TEST_DATABASE_URL")
        args.redis = os.environ.get("SEAMLINE_TEST_REDIS_URL")
        if not args.postgres or not args.redis:
            parser.error("SEAMLINE_TEST_DATABASE_URL and SEAMLINE_TEST_REDIS_URL are not set: "
                         "run through bash tests/services.sh")
    if bool(args.postgres) != bool(args.redis):
        parser.error("give both --postgres and --redis")
    if not 0 < args.small < args.large:
        parser.error("--small must be positive and below --large")

    from nlu.understanding import Understanding

    started = time.perf_counter()
    understanding = Understanding.from_config(CONFIG_DIR)
    progress(f"intent model trained on config/intents ({time.perf_counter() - started:.1f} s)")
    lines = []
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(prefix="seamline-scale-") as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/seamline.db"
            results = run_backend("SQLite, in-process sessions", url, "", understanding, args)
            lines += report("SQLite (WAL), in-process sessions", results, args.small, args.large)
    if args.postgres:
        name = f"bench_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin(args.postgres, f'CREATE DATABASE "{name}"'))
        try:
            url = args.postgres.rsplit("/", 1)[0] + "/" + name
            results = run_backend("PostgreSQL + Redis", url, args.redis, understanding, args)
            lines += report("PostgreSQL + Redis sessions", results, args.small, args.large)
        finally:
            asyncio.run(_admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print("\n".join(lines))
    print("\ntarget: the per-message cost grows under 1.5x from the small to the large population")
    return 0


if __name__ == "__main__":
    sys.exit(main())
