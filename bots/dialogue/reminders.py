"""Reminders that survive a restart: Rasa's ReminderScheduled / ReminderCancelled on the SQL database.

A custom action schedules a reminder ("I'll remind you tomorrow"); the ``remind`` step
(bots/steps/remind.py) stores it as a row of ``reminders``. The ``Scheduler``, a task of the app's
lifetime, fires what is due: the reminder's intent is triggered for the customer as if they had
said it (``Pipeline.trigger``), and the answer goes out on the channel that reaches them then.

Why the rules below:
- Once, whichever process fires it: a row is claimed by a conditional UPDATE (``fired_at IS NULL``)
  with a fresh ``claim`` token, before anything is sent; two schedulers on one database never both
  win it. The price is at-most-once: a crash between the claim and the send loses that one send
  (the row says ``fired_at`` without an ``outcome``). Rows are claimed one at a time, so a crash
  loses at most the one reminder being fired.
- Reminders due while no server ran fire at the next start (the first pass runs at once).
- Same name, same customer: the new one replaces the old one (as in Rasa). A cancellation in a turn
  applies to reminders scheduled before it; the ones that turn schedules stand.
- ``kill_on_user_message``: the customer wrote after it was scheduled, so it is not fired. Checked
  at fire time against the stored messages (the truth, whichever process took the message), and
  rows are deleted early by the ``remind`` step when this process knows the customer has some.
- While people hold the conversation it is dropped, as Rasa drops it (a paused conversation runs no
  actions): the outcome says ``dropped`` and nothing is said. Firing it later could interrupt the
  agent's work or arrive long after it made sense.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Executable

from seamline.bots.dialogue.model import Reminder
from seamline.shared.errors import StoreError
from seamline.shared.history import new_id
from seamline.shared.message import utcnow
from seamline.shared.storage.database import reading
from seamline.shared.storage.models import CustomerRow, MessageRow, ReminderRow
from seamline.shared.storage.sql import SqlChatStore, aware

log = logging.getLogger(__name__)
_table = cast(Table, ReminderRow.__table__)

SENT, DROPPED, KILLED, FAILED = "sent", "dropped", "killed", "failed"
KEPT = timedelta(days=7)  # fired rows are kept this long (what happened to a reminder), then purged


@dataclass(frozen=True)
class Due:
    """A claimed reminder, to fire now. ``customer_id`` is the customer it belongs to now (the
    survivor, when the one it was scheduled for was linked into another)."""

    id: int
    customer_id: str
    name: str
    intent: str
    entities: tuple[tuple[str, Any], ...]
    kill_on_user_message: bool
    due_at: datetime
    created_at: datetime
    erased: bool = False


class Reminders(Protocol):
    """Where reminders are kept: what the ``remind`` step, ``Pipeline`` and the ``Scheduler`` need.
    ``on_scheduled`` callbacks hear of each reminder stored here (the scheduler wakes up early)."""

    on_scheduled: list[Callable[[datetime], None]]

    async def update(
        self,
        customer_id: str,
        *,
        schedule: Iterable[Reminder] = (),
        cancel: Iterable[str] = (),
        customer_wrote: bool = False,
    ) -> None: ...

    async def claim(self, now: datetime | None = None) -> Due | None: ...

    async def settle(self, due: Due, outcome: str) -> None: ...

    async def wrote_since(self, customer_id: str, since: datetime) -> bool: ...

    async def pending(self, customer_id: str) -> list[Reminder]: ...

    async def outcomes(self, customer_id: str) -> dict[str, str | None]: ...

    async def next_due(self) -> datetime | None: ...

    async def purge(self, kept: timedelta = KEPT) -> None: ...


class SqlReminders:
    """The ``Reminders`` of every customer, on the chat store's database and group writer."""

    def __init__(self, *, store: SqlChatStore) -> None:
        self._store = store
        dialect = postgresql if store.engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(_table)
        self._upsert = insert.on_conflict_do_update(
            index_elements=["customer_id", "name"],
            set_={
                c: insert.excluded[c]
                for c in ("intent", "entities", "kill_on_user_message", "due_at", "created_at", "fired_at")
            }
            | {"claim": None, "outcome": None},
        )
        self._settle = update(_table).where(_table.c.id == bindparam("row")).values(outcome=bindparam("how"))
        # Customers this process knows to have reminders a message of theirs cancels (a cache: the
        # check at fire time is the truth).
        self._killable: set[str] = set()
        self.on_scheduled: list[Callable[[datetime], None]] = []  # the scheduler wakes up early

    async def update(
        self,
        customer_id: str,
        *,
        schedule: Iterable[Reminder] = (),
        cancel: Iterable[str] = (),
        customer_wrote: bool = False,
    ) -> None:
        """One turn's changes, committed together: a message of the customer cancels their reminders
        with ``kill_on_user_message``; ``cancel`` names reminders to cancel ("*": all of them);
        ``schedule`` adds (or replaces, by name) reminders."""
        new = list({r.name: r for r in schedule}.values())  # the same name twice: the last one, as in Rasa
        cancelled = list(dict.fromkeys(cancel))
        kill = customer_wrote and customer_id in self._killable
        if not (new or cancelled or kill):
            return  # most turns: nothing to build a statement for
        names = [r.name for r in new]
        pending = [_table.c.customer_id == customer_id, _table.c.fired_at.is_(None), _table.c.name.not_in(names)]
        writes: list[tuple[Executable, dict[str, Any]]] = []
        if kill:
            writes.append((delete(_table).where(*pending, _table.c.kill_on_user_message.is_(True)), {}))
            self._killable.discard(customer_id)
        if "*" in cancelled:
            writes.append((delete(_table).where(*pending), {}))
        elif cancelled:
            writes.append((delete(_table).where(*pending, _table.c.name.in_(cancelled)), {}))
        now = utcnow()
        for reminder in new:
            writes.append(
                (
                    self._upsert,
                    {
                        "customer_id": customer_id,
                        "name": reminder.name,
                        "intent": reminder.intent,
                        "entities": [[k, v] for k, v in reminder.entities],
                        "kill_on_user_message": reminder.kill_on_user_message,
                        "due_at": in_utc(reminder.at),
                        "created_at": now,
                        "fired_at": None,
                    },
                )
            )
            if reminder.kill_on_user_message:
                self._killable.add(customer_id)
        if not writes:
            return
        await self._store.write_all(writes)
        for reminder in new:
            for wake in self.on_scheduled:
                wake(reminder.at)

    async def claim(self, now: datetime | None = None) -> Due | None:
        """The oldest due reminder, now this process's to fire (marked fired), or None."""
        now = in_utc(now or utcnow())
        token = new_id()
        due = [_table.c.fired_at.is_(None), _table.c.due_at <= now]
        oldest = select(_table.c.id).where(*due).order_by(_table.c.due_at, _table.c.id).limit(1)
        # The conditions repeated outside the subquery: PostgreSQL re-checks them on a row another
        # process claimed meanwhile, so only one of two racing schedulers wins it.
        await self._store.run(update(_table).where(_table.c.id.in_(oldest), *due).values(fired_at=now, claim=token))
        query = (
            select(_table, CustomerRow.merged_into, CustomerRow.erased_at)
            .join(CustomerRow, CustomerRow.id == _table.c.customer_id)
            .where(_table.c.claim == token)
        )
        rows = await self._read(query)
        if not rows:
            return None
        r = rows[0]
        return Due(
            id=r.id,
            customer_id=r.merged_into or r.customer_id,
            name=r.name,
            intent=r.intent,
            entities=tuple((str(k), v) for k, v in (r.entities or ())),
            kill_on_user_message=bool(r.kill_on_user_message),
            due_at=aware(r.due_at),
            created_at=aware(r.created_at),
            erased=r.erased_at is not None,
        )

    async def settle(self, due: Due, outcome: str) -> None:
        """What became of a fired reminder: sent, dropped (people hold the conversation), killed (the
        customer wrote since), failed."""
        await self._store.write_all([(self._settle, {"row": due.id, "how": outcome})])
        self._killable.discard(due.customer_id)  # only the early clean-up is lost; the fire-time check stays

    async def wrote_since(self, customer_id: str, since: datetime) -> bool:
        """Whether the customer wrote (on any channel) after ``since``."""
        m = MessageRow
        query = select(exists().where(m.customer_id == customer_id, m.direction == "in", m.created_at > since))
        return bool((await self._read(query))[0][0])

    async def pending(self, customer_id: str) -> list[Reminder]:
        """The customer's reminders not fired yet, soonest first."""
        query = (
            select(_table)
            .where(_table.c.customer_id == customer_id, _table.c.fired_at.is_(None))
            .order_by(_table.c.due_at)
        )
        return [
            Reminder(
                r.name, r.intent, aware(r.due_at), tuple((k, v) for k, v in r.entities or ()), r.kill_on_user_message
            )
            for r in await self._read(query)
        ]

    async def outcomes(self, customer_id: str) -> dict[str, str | None]:
        """Fired reminders by name: what became of each (None: claimed, not settled, e.g. a crash)."""
        query = select(_table.c.name, _table.c.outcome).where(
            _table.c.customer_id == customer_id, _table.c.fired_at.is_not(None)
        )
        return {r.name: r.outcome for r in await self._read(query)}

    async def next_due(self) -> datetime | None:
        query = select(func.min(_table.c.due_at)).where(_table.c.fired_at.is_(None))
        value = (await self._read(query))[0][0]
        return aware(value) if value is not None else None

    async def purge(self, kept: timedelta = KEPT) -> None:
        await self._store.run(delete(_table).where(_table.c.fired_at < utcnow() - kept))

    async def _read(self, query: Executable) -> list[Any]:
        try:
            async with reading(self._store.engine).connect() as conn:
                return list((await conn.execute(query)).all())
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read reminders: {exc}") from exc


def in_utc(at: datetime) -> datetime:
    """Stored in UTC, as every time Seamline keeps: SQLite drops the offset (a Moscow 10:00 would be
    read back as 10:00 UTC). A naive time is UTC already (rasa-sdk's events say so)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


# Triggers a reminder's intent for a customer; True when the bot answered, False when the conversation
# is with people (or the customer cannot be found): Pipeline.trigger.
Fire = Callable[[Due], Awaitable[bool]]


class Scheduler:
    """Fires due reminders, one at a time, while the app runs. It sleeps until the soonest reminder
    or ``interval`` (a reminder another process scheduled is seen at the next look), and wakes early
    when this process schedules one."""

    def __init__(self, *, reminders: Reminders, fire: Fire, interval: float = 10.0) -> None:
        self._reminders = reminders
        self._fire = fire
        self._interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reminders.on_scheduled.append(self._scheduled)
        self._task = asyncio.create_task(self._run(), name="seamline-reminders")

    async def stop(self) -> None:
        if self._scheduled in self._reminders.on_scheduled:
            self._reminders.on_scheduled.remove(self._scheduled)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _scheduled(self, at: datetime) -> None:
        self._wake.set()

    async def fire_due(self, now: datetime | None = None) -> int:
        """Fire everything due (by ``now``, default: now); returns how many were claimed here."""
        fired = 0
        while (due := await self._reminders.claim(now)) is not None:
            fired += 1
            await self._reminders.settle(due, await self._outcome(due))
        return fired

    async def _outcome(self, due: Due) -> str:
        if due.erased:
            return DROPPED
        if due.kill_on_user_message and await self._reminders.wrote_since(due.customer_id, due.created_at):
            log.info("reminder %s of customer %s not fired: they wrote since", due.name, due.customer_id)
            return KILLED
        try:
            answered = await self._fire(due)
        except Exception:
            log.exception("reminder %s of customer %s failed", due.name, due.customer_id)
            return FAILED
        if not answered:
            log.info("reminder %s of customer %s dropped: people hold the conversation", due.name, due.customer_id)
        return SENT if answered else DROPPED

    async def _run(self) -> None:
        purged = utcnow() - KEPT
        while True:
            self._wake.clear()  # before looking: a reminder scheduled from now on wakes the wait below
            try:
                await self.fire_due()
                soonest = await self._reminders.next_due()
                if utcnow() - purged > timedelta(hours=1):
                    await self._reminders.purge()
                    purged = utcnow()
            except Exception:  # the one broad except of this loop: the database may be back next time
                log.warning("firing reminders failed; trying again in %.0f s", self._interval, exc_info=True)
                soonest = None
            wait = self._interval
            if soonest is not None:
                wait = max(0.0, min(wait, (soonest - utcnow()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)


def _serves(reminders: SqlReminders) -> Reminders:
    return reminders  # for mypy: the SQL store is the protocol
