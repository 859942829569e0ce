"""What handoff keeps about conversations people are on, behind two protocols.

Handoff reads and moves conversation rows of the core's tables; it does so here, through
``HandoffStore`` (the rows) and ``HandoffFigures`` (counts and timings for routing and wait
estimates), so the rest of handoff never writes SQL and a test can run one contract over every
backend. The SQL implementation shares the chat store's engine and group writer: a move commits
in the same queue of writes as the messages around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import ColumnElement, Executable

from seamline.handoff.machine import BOT_SILENT
from seamline.shared.errors import StoreError
from seamline.shared.storage.database import reading
from seamline.shared.storage.models import AgentRow, ConversationRow, EventRow, MessageRow
from seamline.shared.storage.sql import SqlChatStore, aware


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class ConversationInfo:
    id: str
    customer_id: str
    state: str
    queue: str | None
    agent_id: str | None
    escalation: dict[str, Any] | None
    started_at: datetime | None
    queued_at: datetime | None
    updated_at: datetime | None
    position_told: int | None = None  # the queue position the customer was last told

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "state": self.state,
            "queue": self.queue,
            "agent_id": self.agent_id,
            "escalation": self.escalation,
            "started_at": iso(self.started_at),
            "queued_at": iso(self.queued_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True)
class ConversationQuery:
    """Which conversations to list. ``reader``/``skills``: only those held by ``reader`` or waiting in
    one of ``skills`` (``unqueued``: a conversation with no queue counts as one of them)."""

    state: str | None = None
    queue: str | None = None
    agent_id: str | None = None
    limit: int = 200
    offset: int = 0
    reader: str | None = None
    skills: tuple[str, ...] = ()
    unqueued: bool = False


@dataclass(frozen=True)
class Move:
    """A conversation's new handoff state. ``escalation``/``queued_at`` of None keep what is there;
    ``assigned``: a person takes it now (handling time is measured from ``at``)."""

    state: str
    queue: str | None
    agent_id: str | None
    at: datetime
    escalation: dict[str, Any] | None = None
    queued_at: datetime | None = None
    assigned: bool = False


class HandoffStore(Protocol):
    """Conversation rows as handoff reads and moves them."""

    async def get(self, conversation_id: str) -> ConversationInfo | None: ...

    async def find(self, query: ConversationQuery) -> list[ConversationInfo]: ...

    async def placements(self, customer_id: str) -> list[tuple[str | None, str | None]]: ...

    async def orphaned(self) -> list[ConversationInfo]: ...

    async def move(self, conversation_id: str, move: Move) -> None: ...

    async def set_position_told(self, conversation_id: str, position: int) -> None: ...

    async def set_escalation(self, conversation_id: str, escalation: dict[str, Any]) -> None: ...

    async def notes(self, conversation_id: str) -> list[dict[str, Any]]: ...


class HandoffFigures(Protocol):
    """What routing and the wait estimates count."""

    async def counts(self, states: tuple[str, ...]) -> dict[tuple[str | None, str], int]: ...

    async def loads(self, agent_ids: list[str]) -> dict[str, int]: ...

    async def handling_minutes(self, queue: str, since: datetime, limit: int) -> list[float]: ...

    async def last_customer_message(self, conversation_id: str) -> datetime | None: ...


class ConversationRows(HandoffStore, HandoffFigures, Protocol):
    """Both jobs, as one backend serves them."""


def _info(row: Any) -> ConversationInfo:
    return ConversationInfo(
        row.id,
        row.customer_id,
        row.state,
        row.queue,
        row.agent_id,
        row.escalation,
        aware(row.started_at),
        aware(row.queued_at),
        aware(row.updated_at),
        row.position_told,
    )


class SqlConversationRows:
    def __init__(self, chat: SqlChatStore) -> None:
        self._engine = chat.engine
        self._chat = chat

    async def _rows(self, query: Executable) -> list[Any]:
        try:
            async with reading(self._engine).connect() as conn:
                return list((await conn.execute(query)).all())
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read conversations: {exc}") from exc

    async def get(self, conversation_id: str) -> ConversationInfo | None:
        rows = await self._rows(select(ConversationRow).where(ConversationRow.id == conversation_id))
        return _info(rows[0]) if rows else None

    async def find(self, query: ConversationQuery) -> list[ConversationInfo]:
        """Waiting ones oldest first (the queue's order); others most recently changed first."""
        c = ConversationRow
        statement = select(c)
        if query.reader is not None:
            skills: ColumnElement[bool] = c.queue.in_(list(query.skills))
            if query.unqueued:
                skills = skills | c.queue.is_(None)
            statement = statement.where((c.agent_id == query.reader) | skills)
        if query.state:
            statement = statement.where(c.state == query.state)
        if query.queue:
            statement = statement.where(c.queue == query.queue)
        if query.agent_id:
            statement = statement.where(c.agent_id == query.agent_id)
        order = c.queued_at if query.state == "queued" else c.updated_at.desc()
        statement = statement.order_by(order, c.id).limit(query.limit).offset(query.offset)  # id: a stable page
        return [_info(r) for r in await self._rows(statement)]

    async def placements(self, customer_id: str) -> list[tuple[str | None, str | None]]:
        """(queue, agent id) of every conversation of the customer: who may read their profile."""
        rows = await self._rows(
            select(ConversationRow.queue, ConversationRow.agent_id).where(ConversationRow.customer_id == customer_id)
        )
        return [(queue, agent_id) for queue, agent_id in rows]

    async def orphaned(self) -> list[ConversationInfo]:
        """Held by an agent who no longer exists (``seamline agents remove``)."""
        c = ConversationRow
        return [
            _info(r)
            for r in await self._rows(
                select(c).where(
                    c.state.in_(list(BOT_SILENT)), c.agent_id.is_not(None), c.agent_id.not_in(select(AgentRow.id))
                )
            )
        ]

    async def move(self, conversation_id: str, move: Move) -> None:
        values: dict[str, Any] = {
            "state": move.state,
            "queue": move.queue,
            "agent_id": move.agent_id,
            "updated_at": move.at,
            "closed_at": move.at if move.state in ("resolved", "abandoned") else None,
            "position_told": None,
        }
        if move.escalation is not None:
            values["escalation"] = move.escalation
        if move.queued_at is not None:
            values["queued_at"] = move.queued_at
        if move.assigned:
            values["assigned_at"] = move.at
        await self._chat.run(update(ConversationRow).where(ConversationRow.id == conversation_id).values(**values))

    async def set_position_told(self, conversation_id: str, position: int) -> None:
        await self._chat.run(
            update(ConversationRow).where(ConversationRow.id == conversation_id).values(position_told=position)
        )

    async def set_escalation(self, conversation_id: str, escalation: dict[str, Any]) -> None:
        await self._chat.run(
            update(ConversationRow).where(ConversationRow.id == conversation_id).values(escalation=escalation)
        )

    async def notes(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's events (moves, notes, ratings), oldest first."""
        rows = await self._rows(
            select(EventRow).where(EventRow.conversation_id == conversation_id).order_by(EventRow.id)
        )
        return [{"kind": r.kind, "data": r.data, "at": iso(aware(r.created_at))} for r in rows]

    async def counts(self, states: tuple[str, ...]) -> dict[tuple[str | None, str], int]:
        c = ConversationRow
        rows = await self._rows(
            select(c.queue, c.state, func.count()).where(c.state.in_(list(states))).group_by(c.queue, c.state)
        )
        return {(queue, state): int(n) for queue, state, n in rows}

    async def loads(self, agent_ids: list[str]) -> dict[str, int]:
        """How many conversations each agent holds (or is offered); an agent holding none is absent."""
        c = ConversationRow
        rows = await self._rows(
            select(c.agent_id, func.count())
            .where(c.agent_id.in_(agent_ids), c.state.in_(list(BOT_SILENT)))
            .group_by(c.agent_id)
        )
        return {agent_id: int(n) for agent_id, n in rows}

    async def handling_minutes(self, queue: str, since: datetime, limit: int) -> list[float]:
        """Minutes from a person taking it to resolving it, for the latest ``limit`` conversations of
        ``queue`` resolved since ``since``, newest first."""
        c = ConversationRow
        rows = await self._rows(
            select(c.assigned_at, c.closed_at)
            .where(c.queue == queue, c.closed_at >= since, c.state == "resolved", c.assigned_at.is_not(None))
            .order_by(c.closed_at.desc())
            .limit(limit)
        )
        return [
            (closed - assigned).total_seconds() / 60
            for assigned, closed in ((aware(a), aware(c)) for a, c in rows)
            if assigned and closed
        ]

    async def last_customer_message(self, conversation_id: str) -> datetime | None:
        rows = await self._rows(
            select(func.max(MessageRow.created_at)).where(
                MessageRow.conversation_id == conversation_id, MessageRow.direction == "in"
            )
        )
        return aware(rows[0][0]) if rows and rows[0][0] else None
