"""The ChatStore (shared/history.py) on SQLAlchemy: SQLite by default, PostgreSQL when configured.

Reads go straight to the database; every write goes through one GroupWriter (see writer.py).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast, overload

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable

from seamline.shared.errors import StoreError
from seamline.shared.history import ChatStore, Conversation, StoredMessage, new_id
from seamline.shared.identity import Customer, Identity
from seamline.shared.message import storable, utcnow
from seamline.shared.storage.database import reading
from seamline.shared.storage.models import Base, ConversationRow, CustomerRow, EventRow, IdentityRow, MessageRow
from seamline.shared.storage.writer import GroupWriter

_MESSAGE_COLUMNS = [c.name for c in MessageRow.__table__.columns]


def _row(message: StoredMessage) -> dict[str, Any]:
    """A message's columns, with what no database keeps (NUL, lone surrogates) made U+FFFD."""
    return {name: storable(getattr(message, name)) for name in _MESSAGE_COLUMNS}


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: None) -> None: ...
def aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything Seamline stores is UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class SqlChatStore:
    """Every protocol of shared/history.py and the ``IdentityStore``; ``engine`` and ``writer`` are
    shared with the stores built on the same database (customers, agents, handoff's rows)."""

    def __init__(self, *, engine: AsyncEngine, cache_size: int = 100_000) -> None:
        self.engine = engine
        self.writer = GroupWriter(engine, Base.metadata)
        self._customers: OrderedDict[tuple[str, str], Customer] = OrderedDict()
        self._cache_size = cache_size
        self._first_conversations: dict[str, Conversation] = {}  # created with a new customer, not yet opened
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        messages, customers, conversations = (
            cast(Table, row.__table__) for row in (MessageRow, CustomerRow, ConversationRow)
        )
        # A platform message id or identity seen before is skipped by the database too, never an error.
        self._insert_message = dialect.insert(messages).on_conflict_do_nothing(
            index_elements=["channel", "external_id"]
        )
        self._insert_identity = dialect.insert(cast(Table, IdentityRow.__table__)).on_conflict_do_nothing(
            index_elements=["channel", "external_id"]
        )
        self._insert_customer = insert(customers)
        self._insert_conversation = insert(conversations)
        self._delete_customer = delete(customers).where(customers.c.id == bindparam("customer_id"))
        self._insert_event = insert(cast(Table, EventRow.__table__))
        self._annotate = (
            update(messages)
            .where(messages.c.id == bindparam("message_id"))
            .values(intent=bindparam("intent"), confidence=bindparam("confidence"), nlu=bindparam("nlu"))
        )
        # A message that came again (resent after a failure) was stored under its first row id.
        self._annotate_by_platform_id = (
            update(messages)
            .where(messages.c.channel == bindparam("m_channel"), messages.c.external_id == bindparam("m_external_id"))
            .values(intent=bindparam("intent"), confidence=bindparam("confidence"), nlu=bindparam("nlu"))
        )
        identities = cast(Table, IdentityRow.__table__)
        self._set_reachable = (
            update(identities)
            .where(identities.c.channel == bindparam("id_channel"), identities.c.external_id == bindparam("id_sender"))
            .values(reachable=bindparam("reachable"))
        )
        self._touch = (
            update(customers)
            .where(customers.c.id == bindparam("customer_id"))
            .values(last_channel=bindparam("channel"), last_seen_at=bindparam("seen_at"))
        )
        self._set_state = (
            update(conversations)
            .where(conversations.c.id == bindparam("conversation_id"))
            .values(
                state=bindparam("state"),
                queue=bindparam("queue"),
                updated_at=bindparam("at"),
                closed_at=bindparam("closed_at"),
            )
        )

    async def close(self) -> None:
        await self.writer.close()

    async def resolve_customer(
        self, channel: str, sender: str, address: str, name: str | None = None, language: str | None = None
    ) -> Customer:
        """The customer behind this identity; a new customer (``new=True``) the first time."""
        key = (channel, sender)
        cached = self._customers.get(key)
        if cached is not None:
            self._customers.move_to_end(key)
            return cached
        try:
            customer = await self._find(channel, sender) or await self._create(channel, sender, address, name, language)
        except SQLAlchemyError as exc:
            raise StoreError(f"could not resolve the {channel} customer: {exc}") from exc
        self._customers[key] = replace(customer, new=False)
        while len(self._customers) > self._cache_size:
            self._customers.popitem(last=False)
        return customer

    def forget_identities(self, identities: Iterable[Identity]) -> None:
        """Drop cached identity → customer entries (the identities changed customers)."""
        for identity in identities:
            customer = self._customers.pop((identity.channel, identity.external_id), None)
            if customer is not None:
                self._first_conversations.pop(customer.id, None)

    async def fresh_customer(self, channel: str, sender: str) -> Customer | None:
        """The customer behind an identity read from the database, refreshing the cache."""
        self._customers.pop((channel, sender), None)
        return await self.find_customer(channel, sender)

    async def find_customer(self, channel: str, sender: str) -> Customer | None:
        """The customer behind an identity, or None; never creates one."""
        cached = self._customers.get((channel, sender))
        if cached is not None:
            return cached
        try:
            return await self._find(channel, sender)
        except SQLAlchemyError as exc:
            raise StoreError(f"could not look up the {channel} customer: {exc}") from exc

    async def _find(self, channel: str, sender: str) -> Customer | None:
        query = (
            select(CustomerRow)
            .join(IdentityRow, IdentityRow.customer_id == CustomerRow.id)
            .where(IdentityRow.channel == channel, IdentityRow.external_id == sender)
        )
        async with reading(self.engine).connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return Customer(
            id=row.id,
            name=row.name,
            language=row.language,
            last_channel=row.last_channel,
            created_at=aware(row.created_at),
            attributes=dict(row.attributes or {}),
        )

    async def _create(
        self, channel: str, sender: str, address: str, name: str | None, language: str | None
    ) -> Customer:
        now, customer_id = utcnow(), new_id()
        conversation = Conversation(new_id(), customer_id, "bot", None, now)
        await self.writer.write_all(
            [
                (
                    self._insert_customer,
                    {
                        "id": customer_id,
                        "name": name,
                        "language": language,
                        "last_channel": channel,
                        "attributes": {},
                        "created_at": now,
                        "last_seen_at": now,
                    },
                ),
                (
                    self._insert_identity,
                    {
                        "customer_id": customer_id,
                        "channel": channel,
                        "external_id": sender,
                        "address": address,
                        "reachable": True,
                        "created_at": now,
                    },
                ),
                (self._insert_conversation, self._conversation_row(conversation)),
            ]
        )
        found = await self._find(channel, sender)
        if found is None:
            raise StoreError(f"the new {channel} customer {sender!r} was not stored")
        if found.id != customer_id:
            # Two first messages raced and the other one's identity won: drop our empty customer.
            await self.writer.write(self._delete_customer, {"customer_id": customer_id})
            return found
        self._first_conversations[customer_id] = conversation
        return Customer(
            id=customer_id,
            name=name,
            language=language,
            last_channel=channel,
            created_at=now,
            identities=(Identity(channel, sender, address),),
            new=True,
        )

    async def add_identity(self, customer_id: str, channel: str, external_id: str, address: str) -> None:
        """One more identity of the customer (a proven link); an identity known already is kept as it is."""
        await self.writer.write(
            self._insert_identity,
            {
                "customer_id": customer_id,
                "channel": channel,
                "external_id": external_id,
                "address": address,
                "reachable": True,
                "created_at": utcnow(),
            },
        )

    async def identities(self, customer_id: str) -> list[Identity]:
        query = select(IdentityRow).where(IdentityRow.customer_id == customer_id).order_by(IdentityRow.id)
        async with reading(self.engine).connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Identity(r.channel, r.external_id, r.address, r.reachable) for r in rows]

    async def open_conversation(self, customer: Customer) -> Conversation:
        """The customer's open conversation, or a new one. Call it holding the customer's session lock."""
        first = self._first_conversations.pop(customer.id, None)
        if first is not None:
            return first  # made together with the customer
        if not customer.new:
            query = (
                select(ConversationRow)
                .where(ConversationRow.customer_id == customer.id, ConversationRow.state != "resolved")
                .order_by(ConversationRow.started_at.desc())
                .limit(1)
            )
            try:
                async with reading(self.engine).connect() as conn:
                    row = (await conn.execute(query)).first()
            except SQLAlchemyError as exc:
                raise StoreError(f"could not open a conversation for {customer.id}: {exc}") from exc
            if row is not None:
                return Conversation(row.id, row.customer_id, row.state, row.queue, aware(row.started_at))
        conversation = Conversation(new_id(), customer.id, "bot", None, utcnow())
        await self.writer.write(self._insert_conversation, self._conversation_row(conversation))
        return conversation

    @staticmethod
    def _conversation_row(conversation: Conversation) -> dict[str, Any]:
        return {
            "id": conversation.id,
            "customer_id": conversation.customer_id,
            "state": conversation.state,
            "queue": conversation.queue,
            "started_at": conversation.started_at,
            "updated_at": conversation.started_at,
            "closed_at": None,
        }

    async def run(self, statement: Executable) -> None:
        """One write statement with its values bound (through the group writer)."""
        await self.writer.write(statement, {})

    async def write_all(self, writes: list[tuple[Executable, dict[str, Any]]]) -> None:
        """(statement, values) pairs committed together, through the group writer."""
        await self.writer.write_all(writes)

    async def open_conversation_for(self, customer_id: str) -> Conversation:
        """A new conversation for the customer (the previous one was closed)."""
        conversation = Conversation(new_id(), customer_id, "bot", None, utcnow())
        await self.writer.write(self._insert_conversation, self._conversation_row(conversation))
        return conversation

    async def set_conversation_state(self, conversation_id: str, state: str, queue: str | None = None) -> None:
        now = utcnow()
        await self.writer.write(
            self._set_state,
            {
                "conversation_id": conversation_id,
                "state": state,
                "queue": queue,
                "at": now,
                "closed_at": now if state == "resolved" else None,
            },
        )

    async def conversation(self, conversation_id: str) -> Conversation | None:
        async with reading(self.engine).connect() as conn:
            row = (await conn.execute(select(ConversationRow).where(ConversationRow.id == conversation_id))).first()
        return (
            None if row is None else Conversation(row.id, row.customer_id, row.state, row.queue, aware(row.started_at))
        )

    async def append(self, message: StoredMessage) -> None:
        """Store one message; returns once it is committed. A repeated (channel, external_id) is skipped."""
        await self.writer.write(self._insert_message, _row(message))

    async def annotate(
        self,
        message: StoredMessage,
        intent: str | None,
        confidence: float | None,
        nlu: dict[str, Any],
        replies: tuple[StoredMessage, ...] = (),
        outbox: Sequence[Any] = (),
    ) -> None:
        """Keep what was understood of a message, the replies to it and their outbox rows (the
        sending to do, shared/storage/outbox.py), in one commit."""
        understood = {"intent": intent, "confidence": confidence, "nlu": nlu}
        if message.external_id is None:
            annotation = (self._annotate, {"message_id": message.id, **understood})
        else:
            annotation = (
                self._annotate_by_platform_id,
                {"m_channel": message.channel, "m_external_id": message.external_id, **understood},
            )
        await self.writer.write_all([annotation, *[(self._insert_message, _row(m)) for m in replies], *outbox])

    async def append_all(
        self, messages: Sequence[StoredMessage], outbox: Sequence[tuple[Executable, dict[str, Any]]] = ()
    ) -> None:
        """Store messages and their outbox rows in one commit (an agent's reply, a reminder's turn)."""
        await self.writer.write_all([*[(self._insert_message, _row(m)) for m in messages], *outbox])

    async def history(self, customer_id: str, limit: int = 100) -> list[StoredMessage]:
        """The customer's latest ``limit`` messages on every channel, oldest first."""
        query = (
            select(MessageRow)
            .where(MessageRow.customer_id == customer_id)
            .order_by(MessageRow.created_at.desc(), MessageRow.id.desc())
            .limit(limit)
        )
        try:
            async with reading(self.engine).connect() as conn:
                rows = (await conn.execute(query)).all()
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read the history of {customer_id}: {exc}") from exc
        return [
            StoredMessage(
                **{**{name: getattr(r, name) for name in _MESSAGE_COLUMNS}, "created_at": aware(r.created_at)}
            )
            for r in reversed(rows)
        ]

    async def recent_external_ids(self, customer_id: str, limit: int = 200) -> list[str]:
        """The platform ids of the customer's latest answered messages (a stored message whose turn
        never committed, say a crash came between, is not among them: it is to be answered)."""
        query = (
            select(MessageRow.channel, MessageRow.external_id)
            .where(
                MessageRow.customer_id == customer_id,
                MessageRow.external_id.is_not(None),
                MessageRow.confidence.is_not(None),
            )
            .order_by(MessageRow.created_at.desc())
            .limit(limit)
        )
        async with reading(self.engine).connect() as conn:
            rows = (await conn.execute(query)).all()
        return [f"{r.channel}:{r.external_id}" for r in reversed(rows)]

    async def answered(self, channel: str, external_id: str) -> bool:
        """Whether the message with this platform id was stored and its turn committed (annotated)."""
        query = select(MessageRow.id).where(
            MessageRow.channel == channel, MessageRow.external_id == external_id, MessageRow.confidence.is_not(None)
        )
        try:
            async with reading(self.engine).connect() as conn:
                return (await conn.execute(query)).first() is not None
        except SQLAlchemyError as exc:
            raise StoreError(f"could not look up {channel} message {external_id}: {exc}") from exc

    async def unanswered(self, channel: str, since: datetime, limit: int = 1000) -> list[StoredMessage]:
        """Customers' messages on ``channel`` stored since ``since`` whose turn never committed, oldest first."""
        query = (
            select(MessageRow)
            .where(
                MessageRow.channel == channel,
                MessageRow.direction == "in",
                MessageRow.external_id.is_not(None),
                MessageRow.confidence.is_(None),
                MessageRow.created_at >= since,
            )
            .order_by(MessageRow.created_at, MessageRow.id)
            .limit(limit)
        )
        async with reading(self.engine).connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            StoredMessage(
                **{**{name: getattr(r, name) for name in _MESSAGE_COLUMNS}, "created_at": aware(r.created_at)}
            )
            for r in rows
        ]

    async def replies_to(self, channel: str, external_id: str) -> list[StoredMessage]:
        """What the bot said in the turn of the message with this platform id (stored with it, and
        before the same identity's next message), oldest first; [] if none."""
        m = MessageRow
        async with reading(self.engine).connect() as conn:
            first = (
                await conn.execute(
                    select(m.identity, m.created_at).where(m.channel == channel, m.external_id == external_id)
                )
            ).first()
            if first is None:
                return []
            same = (m.channel == channel, m.identity == first.identity)
            after = (
                await conn.execute(
                    select(func.min(m.created_at)).where(*same, m.direction == "in", m.created_at > first.created_at)
                )
            ).scalar()
            query = (
                select(m)
                .where(
                    *same,
                    m.direction == "out",
                    m.role == "bot",
                    m.created_at > first.created_at,
                    *([m.created_at < after] if after is not None else []),
                )
                .order_by(m.created_at)
            )
            rows = (await conn.execute(query)).all()
        return [
            StoredMessage(
                **{**{name: getattr(r, name) for name in _MESSAGE_COLUMNS}, "created_at": aware(r.created_at)}
            )
            for r in rows
        ]

    async def touch_customer(self, customer_id: str, channel: str) -> None:
        """Remember the channel the customer is on now."""
        await self.writer.write(self._touch, {"customer_id": customer_id, "channel": channel, "seen_at": utcnow()})

    async def set_reachable(self, channel: str, sender: str, reachable: bool) -> None:
        """Mark an identity (un)reachable, e.g. when the customer blocked the bot there."""
        await self.writer.write(
            self._set_reachable, {"id_channel": channel, "id_sender": sender, "reachable": reachable}
        )

    async def record_event(
        self, kind: str, customer_id: str | None, conversation_id: str | None, data: dict[str, Any] | None = None
    ) -> None:
        await self.writer.write(
            self._insert_event,
            {
                "kind": kind,
                "customer_id": customer_id,
                "conversation_id": conversation_id,
                "data": data or {},
                "created_at": utcnow(),
            },
        )

    async def events(self, customer_id: str) -> list[dict[str, Any]]:
        query = select(EventRow).where(EventRow.customer_id == customer_id).order_by(EventRow.id)
        async with reading(self.engine).connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            {"kind": r.kind, "conversation_id": r.conversation_id, "data": r.data, "created_at": aware(r.created_at)}
            for r in rows
        ]


# Written for mypy: the SQL store is every protocol it is used through.
def _serves(store: SqlChatStore) -> ChatStore:
    return store
