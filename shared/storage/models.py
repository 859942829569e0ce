"""The relational schema. Alembic migrations in ``migrations/`` create and change it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = String(32)


class Base(DeclarativeBase):
    pass


class CustomerRow(Base):
    __tablename__ = "customers"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(8))
    last_channel: Mapped[str | None] = mapped_column(String(16))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # key -> {"at": ISO time, "source": who set it, "verified": bool}: decides merge conflicts
    attribute_meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    merged_into: Mapped[str | None] = mapped_column(ID, index=True)  # linked into another customer (undoable)
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IdentityRow(Base):
    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identity_channel_external"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    address: Mapped[str] = mapped_column(String(128))
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    link_failures: Mapped[int] = mapped_column(Integer, default=0)  # wrong link codes in a row
    link_locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConversationRow(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_queue_closed", "queue", "closed_at"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    # bot | queued | with_agent | transferred | resolved | abandoned | merged (see handoff/machine.py)
    state: Mapped[str] = mapped_column(String(16), default="bot", index=True)
    queue: Mapped[str | None] = mapped_column(String(64))
    agent_id: Mapped[str | None] = mapped_column(ID, index=True)  # who holds it (with_agent) or is offered it
    escalation: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # why and how it went to people
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # a person took it
    position_told: Mapped[int | None] = mapped_column(Integer)  # the queue place the customer was last told
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MessageRow(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_message_channel_external"),
        Index("ix_messages_customer_created", "customer_id", "created_at"),
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ID, ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    role: Mapped[str] = mapped_column(String(16))  # customer | bot | agent
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[str | None] = mapped_column(String(256))
    buttons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    attachments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    external_id: Mapped[str | None] = mapped_column(String(160))
    # the identity (external id on ``channel``) that wrote it or that it was sent to: undoing a
    # link gives each message back to the customer whose identity it belongs to
    identity: Mapped[str | None] = mapped_column(String(128))
    intent: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    nlu: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_customer_created", "customer_id", "created_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[str | None] = mapped_column(ID)
    conversation_id: Mapped[str | None] = mapped_column(ID)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LinkCodeRow(Base):
    """A one-time proof (6-digit code or deep-link token), kept only as a keyed hash."""

    __tablename__ = "link_codes"
    __table_args__ = (Index("ix_link_codes_identity", "channel", "external_id", "created_at"),)
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # code | token
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LinkRow(Base):
    """One link of two customers: what moved, so that it can be undone."""

    __tablename__ = "links"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    survivor_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    merged_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(32))  # code | deep_link | site_identity | admin
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    undone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    undone_by: Mapped[str | None] = mapped_column(String(200))


class AgentRow(Base):
    __tablename__ = "agents"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(16), default="agent")  # agent | admin
    queues: Mapped[list[Any]] = mapped_column(JSON, default=list)
    capacity: Mapped[int] = mapped_column(Integer, default=5)
    status: Mapped[str] = mapped_column(String(16), default="offline")  # online | away | offline
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # console or API


class AgentTokenRow(Base):
    """A login session (console cookie) or an API token, kept only as a SHA-256 digest."""

    __tablename__ = "agent_tokens"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ID, ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # session | api
    csrf: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InboxRow(Base):
    """A platform update (Telegram update, VK event) kept as it came, before the platform is told "ok";
    done once its turn is committed. See shared/storage/inbox.py."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("channel", "platform_id", name="uq_inbox_channel_platform"),
        Index("ix_inbox_channel_done", "channel", "done_at"),
        # the per-chat order reads: the earliest unfinished rows of a chat (migration 0009)
        Index(
            "ix_inbox_chat_pending",
            "channel",
            "chat",
            "id",
            postgresql_where=text("done_at IS NULL"),
            sqlite_where=text("done_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    platform_id: Mapped[str] = mapped_column(String(160))  # update_id, event_id
    chat: Mapped[str] = mapped_column(String(128))  # whose order it keeps
    body: Mapped[str] = mapped_column(Text)  # the update's JSON as received
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    owner: Mapped[str | None] = mapped_column(String(128))  # the process working on it: host:pid:boot
    claim: Mapped[str | None] = mapped_column(String(32))  # one token per take-over, to tell who won
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # lease start, renewed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)  # why it was given up, if it was


class ReminderRow(Base):
    """A message scheduled for a customer (Rasa's ReminderScheduled): at ``due_at`` the intent is
    triggered for them. A row so that it survives a restart; ``fired_at`` is set by the one process
    whose conditional UPDATE claimed it (``claim`` tells which), before anything is sent. See
    bots/dialogue/reminders.py."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("customer_id", "name", name="uq_reminders_customer_name"),
        Index("ix_reminders_fired_due", "fired_at", "due_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    intent: Mapped[str] = mapped_column(String(200))
    entities: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[entity, value], ...]
    kill_on_user_message: Mapped[bool] = mapped_column(Boolean, default=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # claimed (then sent or dropped)
    claim: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(16))  # sent | dropped | failed


class OutboxRow(Base):
    """One reply to deliver (bots/outbox.py): committed with the turn (or the agent's message) that
    said it, sent after the session lock is released, marked sent right after the platform answered.
    ``id`` is the stored message's id, the idempotency key the channels pass on (VK's random_id, the
    widget's frame id); ``seq`` orders the replies of one ``lane`` (an address, or a customer). An empty ``channel`` means "whatever
    channel reaches the customer at send time". See shared/storage/outbox.py."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("id", name="uq_outbox_id"),
        Index("ix_outbox_lane_seq", "lane", "seq"),
        Index("ix_outbox_pending", "sent_at", "failed_at", "next_attempt_at"),
        Index("ix_outbox_claimed", "claimed_by", "sent_at"),
    )
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(ID)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id", ondelete="CASCADE"))
    conversation_id: Mapped[str | None] = mapped_column(ID)  # for the logs
    # whose order it keeps: "channel:address", or "customer:<id>" for "whatever reaches them"
    lane: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16), default="")  # "" = the channel that reaches them now
    address: Mapped[str] = mapped_column(String(128), default="")
    identity: Mapped[str] = mapped_column(String(128), default="")  # the external id (marked unreachable)
    reply: Mapped[dict[str, Any]] = mapped_column(JSON)  # text, buttons, image, custom, role
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(128))  # the worker sending it: host:pid:boot
    claim: Mapped[str | None] = mapped_column(String(32))  # one token per claim, to read back who won
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the lease
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # given up (or unreachable)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
