"""The durable outbox: every reply is a row committed with the turn that said it, sent afterwards.

Sending happens outside the customer's session lock (a Telegram 429 may make a send wait a minute),
and a reply committed but not sent before a crash is still sent: by the worker that committed it
(leased to itself at insert, so no extra claim), or by whichever worker's sweep claims it once its
lease ran out. One lane's replies go out in ``seq`` order (a lane is an address, "channel:address",
or a customer, for replies sent on whichever channel reaches them): only the head of a lane's
undelivered rows may be claimed (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two
workers never take the same row; SQLite has one writer, a conditional UPDATE is enough), and the
worker holding it continues with that lane's next rows. Lanes per address keep a dead address
(a failing channel, retried for minutes) from holding back the customer's other channels.

A row marked sent is never sent again, and its copy of the reply is cleared then (a link code
shown in a reply is stored masked in the history, but the customer must get it in clear).

What a SIGKILL does:

- before the turn's commit: no row, no reply; the inbox (or the widget's resend) brings the message again;
- after the commit, before the send: another worker sends it once the lease runs out (``LEASE``), or
  at once if it is on the same host and sees the process is gone;
- after the platform answered, before the "sent" commit (the window is one group commit, about a
  millisecond): the reply is sent again by whoever takes the row over. VK drops it (its random_id is
  derived from the row id), the widget drops a frame id it already shows; Telegram has no such key,
  so there the customer may see that one reply twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, delete, exists, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Executable

from seamline.shared.errors import StoreError
from seamline.shared.history import StoredMessage, new_id
from seamline.shared.message import Button, Reply, Role, storable, utcnow
from seamline.shared.storage.database import reading, sqlite_sync_engine
from seamline.shared.storage.holders import gone, holder
from seamline.shared.storage.models import OutboxRow
from seamline.shared.storage.sql import SqlChatStore, aware

WORKER = holder()  # this process, this boot
LEASE = timedelta(seconds=30)  # renewed while the worker lives (Dispatcher); a dead one's rows are taken over
KEPT = timedelta(days=1)  # sent rows are forgotten after a day (the message stays in the history)

_t = cast(Table, OutboxRow.__table__)
_earlier = _t.alias("earlier")
Write = tuple[Executable, dict[str, Any]]


@dataclass(frozen=True)
class Entry:
    """A row this worker holds (its lease), to send now."""

    seq: int
    id: str
    lane: str
    customer_id: str
    conversation_id: str | None
    channel: str  # "" = the channel that reaches the customer now
    address: str
    identity: str
    reply: Reply
    attempts: int


def serialize(reply: Reply) -> dict[str, Any]:
    return {
        "text": reply.text,
        "buttons": [{"title": b.title, "payload": b.payload, "kind": b.kind} for b in reply.buttons],
        "image": reply.image,
        "custom": reply.custom,
        "role": reply.role.value,
    }


def _reply(data: dict[str, Any], row_id: str, at: datetime) -> Reply:
    buttons = tuple(Button(b["title"], b.get("payload") or "", kind=b.get("kind") or "action") for b in data["buttons"])
    return Reply(
        data["text"], buttons, Role(data["role"]), row_id, at, image=data.get("image"), custom=data.get("custom")
    )


def _undelivered(table: Any = _t) -> Any:
    return and_(table.c.sent_at.is_(None), table.c.failed_at.is_(None))


class SqlOutbox:
    """The outbox on the chat store's database and group writer (SQLite or PostgreSQL)."""

    def __init__(self, *, store: SqlChatStore, worker: str = WORKER, lease: timedelta = LEASE) -> None:
        self._store, self.worker, self._lease = store, worker, lease
        self._postgres = store.engine.dialect.name == "postgresql"
        # SQLite: reads on a plain connection right on the event loop (as the group writer writes):
        # a read through the async driver costs a thread hop per call, the most of a hot path's read.
        self._sync = sqlite_sync_engine(store.engine.url)
        self._mine = (
            select(_t)
            .where(_t.c.id.in_(bindparam("o_ids", expanding=True)), _t.c.claimed_by == self.worker, _undelivered())
            .order_by(_t.c.seq)
        )
        # Leased to this worker at insert unless the lane has an undelivered row someone else
        # (or nobody yet) holds: then it waits behind that one, for the holder or the sweep.
        others_first = exists().where(
            _earlier.c.lane == bindparam("o_lane"),
            _undelivered(_earlier),
            or_(_earlier.c.claimed_by.is_(None), _earlier.c.claimed_by != bindparam("o_worker")),
        )
        self._insert = _t.insert().values(claimed_by=case((others_first, None), else_=bindparam("o_worker")))
        self._sent = (
            update(_t)
            .where(_t.c.seq == bindparam("o_seq"))
            .values(
                sent_at=bindparam("o_at"), claimed_by=None, claimed_until=None, attempts=_t.c.attempts + 1, reply={}
            )
        )
        self._again = (
            update(_t)
            .where(_t.c.seq == bindparam("o_seq"))
            .values(
                attempts=bindparam("o_attempts"),
                next_attempt_at=bindparam("o_at"),
                error=bindparam("o_error"),
                claimed_by=None,
                claimed_until=None,
            )
        )
        self._failed = (
            update(_t)
            .where(_t.c.seq == bindparam("o_seq"))
            .values(
                attempts=bindparam("o_attempts"),
                failed_at=bindparam("o_at"),
                error=bindparam("o_error"),
                claimed_by=None,
                claimed_until=None,
            )
        )

    @property
    def lease_seconds(self) -> float:
        return self._lease.total_seconds()

    # -- writing rows (in the caller's commit) -------------------------------------------------

    def rows(
        self,
        stored: Sequence[StoredMessage],
        replies: Sequence[Reply],
        *,
        channel: str = "",
        address: str = "",
        identity: str = "",
    ) -> list[Write]:
        """The outbox rows for replies stored as ``stored``, to commit with them (``write_all``).
        ``channel`` empty: sent on whichever channel reaches the customer at send time."""
        now = utcnow()
        lane = f"{channel}:{address}" if channel else ""
        return [
            (
                self._insert,
                {
                    "id": row.id,
                    "customer_id": row.customer_id,
                    "conversation_id": row.conversation_id,
                    "lane": lane or f"customer:{row.customer_id}",
                    "channel": channel,
                    "address": address,
                    "identity": identity,
                    "reply": storable(serialize(reply)),
                    "attempts": 0,
                    "next_attempt_at": now,
                    "claimed_until": now + self._lease,
                    "created_at": row.created_at,
                    "o_lane": lane or f"customer:{row.customer_id}",
                    "o_worker": self.worker,
                },
            )
            for row, reply in zip(stored, replies, strict=True)
        ]

    # -- claiming ------------------------------------------------------------------------------

    async def mine(self, ids: Iterable[str]) -> list[Entry]:
        """Of the rows with these ids, those leased to this worker and undelivered, in order."""
        ids = list(ids)
        if not ids:
            return []
        return await self._entries(self._mine, {"o_ids": ids})

    async def claim(self, limit: int = 100, lane: str | None = None) -> list[Entry]:
        """Claim due rows nobody holds (or whose lease ran out), only each lane's first
        undelivered one (so replies go out in order whichever worker sends them); oldest first."""
        holders = await self._read(
            select(_t.c.claimed_by).distinct().where(_undelivered(), _t.c.claimed_by.is_not(None))
        )
        dead = [r.claimed_by for r in holders if gone(r.claimed_by)]
        now, token = utcnow(), new_id()
        free = and_(
            _undelivered(),
            or_(
                _t.c.claimed_by.is_(None),
                _t.c.claimed_until < now,
                *([_t.c.claimed_by.in_(dead)] if dead else []),
            ),
        )
        first = ~exists().where(_earlier.c.lane == _t.c.lane, _earlier.c.seq < _t.c.seq, _undelivered(_earlier))
        heads = select(_t.c.seq).where(free, _t.c.next_attempt_at <= now, first)
        if lane is not None:
            heads = heads.where(_t.c.lane == lane)
        heads = heads.order_by(_t.c.seq).limit(limit)
        if self._postgres:  # a row another worker is claiming right now is skipped, not waited for
            heads = heads.with_for_update(skip_locked=True, of=_t)
        # ``free`` again outside the subquery: PostgreSQL re-checks it on a row claimed meanwhile.
        await self._store.run(
            update(_t)
            .where(_t.c.seq.in_(heads.scalar_subquery()), free)
            .values(claimed_by=self.worker, claim=token, claimed_until=now + self._lease)
        )
        return await self._entries(select(_t).where(_t.c.claim == token).order_by(_t.c.seq))

    async def renew(self) -> None:
        """Extend the lease of every undelivered row this worker holds (it is alive and on them)."""
        await self._store.run(
            update(_t)
            .where(_t.c.claimed_by == self.worker, _undelivered())
            .values(claimed_until=utcnow() + self._lease)
        )

    async def release(self, seqs: Sequence[int]) -> None:
        """Give back rows held here but not tried (behind a row that must wait): due for any worker."""
        if seqs:
            await self._store.run(
                update(_t)
                .where(_t.c.seq.in_(list(seqs)), _t.c.claimed_by == self.worker, _undelivered())
                .values(claimed_by=None, claimed_until=None)
            )

    # -- outcomes (one statement each: concurrent conversations' outcomes share a group commit) --

    async def sent(self, entry: Entry) -> None:
        await self._store.write_all([(self._sent, {"o_seq": entry.seq, "o_at": utcnow()})])

    async def again(self, entry: Entry, at: datetime, error: str) -> None:
        """Tried and failed: due again at ``at``, for any worker."""
        values = {"o_seq": entry.seq, "o_attempts": entry.attempts + 1, "o_at": at, "o_error": error[:2000]}
        await self._store.write_all([(self._again, values)])

    async def failed(self, entry: Entry, error: str) -> None:
        """Given up (or nobody to send it to): never tried again; it stays in the history."""
        values = {"o_seq": entry.seq, "o_attempts": entry.attempts + 1, "o_at": utcnow(), "o_error": error[:2000]}
        await self._store.write_all([(self._failed, values)])

    # -- housekeeping --------------------------------------------------------------------------

    async def backlog(self) -> int:
        """Replies stored but neither delivered nor given up."""
        rows = await self._read(select(func.count()).select_from(_t).where(_undelivered()))
        return int(rows[0][0])

    async def purge(self, kept: timedelta = KEPT) -> None:
        """Forget rows sent more than ``kept`` ago; given-up rows stay for a person to look at."""
        await self._store.run(delete(_t).where(_t.c.sent_at < utcnow() - kept))

    async def _entries(self, query: Executable, params: dict[str, Any] | None = None) -> list[Entry]:
        return [
            Entry(
                r.seq,
                r.id,
                r.lane,
                r.customer_id,
                r.conversation_id,
                r.channel,
                r.address,
                r.identity,
                _reply(r.reply, r.id, aware(r.created_at)),
                r.attempts,
            )
            for r in await self._read(query, params)
        ]

    def close(self) -> None:
        if self._sync is not None:
            self._sync.dispose()

    async def _read(self, query: Executable, params: dict[str, Any] | None = None) -> list[Any]:
        try:
            if self._sync is not None:
                with self._sync.connect() as sync:
                    return list(sync.execute(query, params).all())
            async with reading(self._store.engine).connect() as conn:
                return list((await conn.execute(query, params)).all())
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read the outbox: {exc}") from exc
