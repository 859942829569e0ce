"""The durable inbox: a platform's update is a row before the platform is told "ok".

A webhook (or a long poll) stores what it received and only then acknowledges it; the update is
processed after, and its row is marked done once its turn is committed. Whatever is stored but not
done (the process was killed, or processing failed) is taken over later, by this or another process.

Several processes may share one database, so a row is worked on by one process at a time: the one
that stored it, or the one whose conditional UPDATE claimed it (a fresh ``claim`` token per claim
tells who won). A claim is a lease renewed while the process lives; a row whose lease ran out, or
whose owner is a dead process of this host (its pid is gone, or this very pid restarted), may be
claimed again. The platform's id (Telegram ``update_id``, VK ``event_id``) is unique per channel, so
a redelivery is no new row.

One chat's rows are processed in inbox id order, whoever holds them: a row is processed only once no
earlier row of its chat is left not done (held by this process, another, or nobody). ``put`` tells
(``behind``) whether an earlier row was not done when the row was stored; a row behind waits
(``ahead``) until none is, and the earlier rows nobody alive holds (released after a failure, left by a
dead process) are claimed by the process waiting on them (``claim_ahead``) and processed first. The common case, a chat whose earlier rows are done, costs no read beyond
the read-back ``put`` does anyway. For the id order to be the order rows become visible, the ids of
one chat must be given in commit order: on PostgreSQL the insert takes a transaction-scoped advisory
lock on (channel, chat) before its id is drawn, so a second row of the chat waits for the first's
commit; SQLite has one writer at a time anyway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import String, Table, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Executable

from seamline.shared.errors import StoreError
from seamline.shared.history import new_id
from seamline.shared.message import utcnow
from seamline.shared.storage.holders import gone, holder
from seamline.shared.storage.models import InboxRow

if TYPE_CHECKING:
    from seamline.shared.storage.sql import SqlChatStore

log = logging.getLogger(__name__)

OWNER = holder()  # this process, for this boot of it


def new_owner() -> str:
    """An owner name of its own for one app of this process (its rows are kept apart from another
    app's, as another worker's would be); alive while this process lives."""
    return holder()


_table = cast(Table, InboxRow.__table__)


@dataclass(frozen=True)
class Entry:
    """What a channel received: the platform's id, the chat whose order it keeps, the raw JSON."""

    platform_id: str
    chat: str
    body: str


@dataclass(frozen=True)
class Taken:
    """A row this process now works on."""

    id: int
    platform_id: str
    chat: str
    body: str
    claim: str
    attempts: int
    behind: bool = True  # an earlier row of its chat may be not done: check (``ahead``) before processing


class DurableInbox(Protocol):
    """One channel's rows of the durable inbox: stored before acknowledged, claimed by one process,
    done once; what a dead process held is taken over (docs/architecture.md)."""

    @property
    def channel(self) -> str: ...

    async def put(self, entries: list[Entry]) -> list[Taken]: ...

    async def done(self, taken: Taken, error: str | None = None) -> None: ...

    async def release(self, taken: Taken, counted: bool = True) -> None: ...

    async def ahead(self, taken: Taken) -> str | None: ...

    async def claim_ahead(self, taken: Taken) -> list[Taken]: ...

    async def renew(self, ids: list[int]) -> None: ...

    async def take_over(self, limit: int = 1000) -> list[Taken]: ...

    async def purge(self, kept: timedelta = timedelta(days=1)) -> None: ...


class SqlInbox:
    """The ``DurableInbox`` on the chat store's database and group writer."""

    def __init__(
        self, *, store: SqlChatStore, channel: str, lease: timedelta = timedelta(seconds=60), owner: str = OWNER
    ) -> None:
        """``store``: the SqlChatStore whose engine and group writer are used; ``lease``: how long a
        claim holds without being renewed."""
        self._store, self._channel, self._lease, self._owner = store, channel, lease, owner
        self._insert = _insert(store.engine.dialect.name == "postgresql")
        self._done = (
            update(_table)
            .where(_table.c.id == bindparam("row"))
            .values(done_at=bindparam("at"), error=bindparam("why"))
        )
        self._release = (
            update(_table)
            .where(_table.c.id == bindparam("row"), _table.c.claim == bindparam("token"))
            .values(owner=None, claim=None, claimed_at=None, attempts=_table.c.attempts - bindparam("uncount"))
        )

    @property
    def channel(self) -> str:
        return self._channel

    async def put(self, entries: list[Entry]) -> list[Taken]:
        """Store entries (committed when this returns; StoreError if not); returns the new ones, now this
        process's to work on. An entry already stored (a redelivery) is not returned."""
        if not entries:
            return []
        now, tokens = utcnow(), {}
        rows = []
        for entry in entries:
            tokens[entry.platform_id] = token = new_id()
            rows.append(
                (
                    self._insert,
                    {
                        "channel": self._channel,
                        "platform_id": entry.platform_id,
                        "chat": entry.chat,
                        "body": entry.body,
                        "received_at": now,
                        "owner": self._owner,
                        "claim": token,
                        "claimed_at": now,
                        "attempts": 1,
                    },
                )
            )
        await self._store.write_all(rows)
        chats = sorted({entry.chat for entry in entries})
        query = (
            select(_table.c.id, _table.c.platform_id, _table.c.chat, _table.c.claim)
            .where(_table.c.channel == self._channel, _table.c.chat.in_(chats), _table.c.done_at.is_(None))
            .order_by(_table.c.id)
        )
        first: dict[str, int] = {}  # the earliest not-done row of each chat
        won: dict[str, int] = {}
        for r in await self._read(query):
            first.setdefault(r.chat, r.id)
            if r.platform_id in tokens and r.claim == tokens[r.platform_id]:
                won[r.platform_id] = r.id
        return [
            Taken(
                won[e.platform_id],
                e.platform_id,
                e.chat,
                e.body,
                tokens[e.platform_id],
                1,
                behind=first[e.chat] < won[e.platform_id],
            )
            for e in entries
            if e.platform_id in won
        ]

    async def ahead(self, taken: Taken) -> str | None:
        """What is ahead of it in its chat: None (no earlier row is left not done), "held" (the
        earliest is held by a live process) or "free" (nobody holds it, its holder died or its lease
        ran out, or it is this process's own but not queued: ``claim_ahead`` takes it)."""
        query = (
            select(_table.c.owner, (_table.c.claimed_at < utcnow() - self._lease).label("expired"))
            .where(
                _table.c.channel == self._channel,
                _table.c.chat == taken.chat,
                _table.c.done_at.is_(None),
                _table.c.id < taken.id,
            )
            .order_by(_table.c.id)
            .limit(1)
        )
        rows = await self._read(query)
        if not rows:
            return None
        owner, expired = rows[0].owner, rows[0].expired
        return "free" if owner is None or owner == self._owner or expired or gone(owner) else "held"

    async def claim_ahead(self, taken: Taken) -> list[Taken]:
        """Claim the rows of its chat before it that nobody alive holds (this process's own included:
        one not queued here was orphaned), so that the process working on the chat takes them next."""
        owners = await self._read(
            select(_table.c.owner)
            .distinct()
            .where(
                _table.c.channel == self._channel,
                _table.c.chat == taken.chat,
                _table.c.done_at.is_(None),
                _table.c.id < taken.id,
                _table.c.owner.is_not(None),
            )
        )
        free = [r.owner for r in owners if r.owner == self._owner or gone(r.owner)]
        return await self._claim([_table.c.chat == taken.chat, _table.c.id < taken.id], free, limit=100)

    async def done(self, taken: Taken, error: str | None = None) -> None:
        """Its turn is committed (or, with ``error``, it is given up): never taken over again."""
        await self._store.write_all([(self._done, {"row": taken.id, "at": utcnow(), "why": error})])

    async def release(self, taken: Taken, counted: bool = True) -> None:
        """Processing failed: leave it to be claimed again (by the next take-over). ``counted=False``:
        it failed for want of storage (Redis or the database down), which is no attempt against its
        ``max_attempts``."""
        uncount = 0 if counted else 1
        await self._store.write_all([(self._release, {"row": taken.id, "token": taken.claim, "uncount": uncount})])

    async def renew(self, ids: list[int]) -> None:
        """Extend the lease of these rows (those queued or being processed here). A row this process
        owns but does not hold (stored, then the read-back failed) is left to expire and be taken over."""
        now = utcnow()
        for start in range(0, len(ids), 1000):  # bounded statements, whatever the backlog
            await self._store.run(
                update(_table)
                .where(
                    _table.c.id.in_(ids[start : start + 1000]),
                    _table.c.owner == self._owner,
                    _table.c.done_at.is_(None),
                )
                .values(claimed_at=now)
            )

    async def take_over(self, limit: int = 1000) -> list[Taken]:
        """Claim rows stored but not done that nobody alive holds; oldest first."""
        owners = await self._read(
            select(_table.c.owner)
            .distinct()
            .where(_table.c.channel == self._channel, _table.c.done_at.is_(None), _table.c.owner.is_not(None))
        )
        dead = [r.owner for r in owners if gone(r.owner)]
        taken = await self._claim([], dead, limit=limit)
        if dead:
            log.info("%s inbox: took over %d rows of stopped processes %s", self._channel, len(taken), dead)
        return taken

    async def _claim(self, where: list[Any], owners: list[str], *, limit: int) -> list[Taken]:
        """Claim the not-done rows matching ``where`` that nobody holds, whose lease ran out, or whose
        owner is one of ``owners`` (gone); oldest first."""
        now, token = utcnow(), new_id()
        claimable = [
            _table.c.channel == self._channel,
            _table.c.done_at.is_(None),
            *where,
            or_(
                _table.c.owner.is_(None),
                _table.c.claimed_at < now - self._lease,
                *([_table.c.owner.in_(owners)] if owners else []),
            ),
        ]
        oldest = select(_table.c.id).where(*claimable).order_by(_table.c.id).limit(limit)
        # The conditions are repeated outside the subquery: PostgreSQL re-checks them on a row another
        # process claimed meanwhile, so only one of two racing claims wins it.
        await self._store.run(
            update(_table)
            .where(_table.c.id.in_(oldest), *claimable)
            .values(owner=self._owner, claim=token, claimed_at=now, attempts=_table.c.attempts + 1)
        )
        rows = await self._read(select(_table).where(_table.c.claim == token).order_by(_table.c.id))
        return [Taken(r.id, r.platform_id, r.chat, r.body, token, r.attempts) for r in rows]

    async def purge(self, kept: timedelta = timedelta(days=1)) -> None:
        """Forget rows done more than ``kept`` ago (a platform's redelivery comes within hours; the
        message itself stays in the history). Rows given up (with an ``error``) stay for a person."""
        await self._store.run(
            delete(_table).where(
                _table.c.channel == self._channel, _table.c.error.is_(None), _table.c.done_at < utcnow() - kept
            )
        )

    async def _read(self, query: Executable) -> list[Any]:
        try:
            async with self._store.engine.connect() as conn:
                return list((await conn.execute(query)).all())
        except (SQLAlchemyError, OSError) as exc:  # a refused connection is an OSError, unwrapped
            raise StoreError(f"could not read the {self._channel} inbox: {exc}") from exc


def _insert(postgres: bool) -> Executable:
    """The insert of one row, a redelivery (same platform id) doing nothing. On PostgreSQL it first
    takes the advisory lock of the row's chat, held until commit, so that the chat's ids are drawn in
    commit order (an id is drawn when the row is formed, after the lock is granted)."""
    if not postgres:
        return sqlite.insert(_table).on_conflict_do_nothing(index_elements=["channel", "platform_id"])
    names = ["channel", "platform_id", "chat", "body", "received_at", "owner", "claim", "claimed_at", "attempts"]
    key = func.concat(bindparam("channel", type_=String), ":", bindparam("chat", type_=String))
    lock = select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0)).label("locked")).subquery("chat_lock")
    values = select(*(bindparam(name, type_=_table.c[name].type).label(name) for name in names)).select_from(lock)
    return (
        postgresql.insert(_table)
        .from_select(names, values)
        .on_conflict_do_nothing(index_elements=["channel", "platform_id"])
    )


def _serves(inbox: SqlInbox) -> DurableInbox:
    return inbox  # for mypy: the SQL inbox is the protocol
