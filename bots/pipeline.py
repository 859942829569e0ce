"""The one place a message walks through: identity → session → the steps → reply.

Every channel calls ``Pipeline.handle``. It finds the customer and their session (under the
session's lock), then walks the message through an ordered list of steps (bots/steps/, one job
each; docs/pipeline.md lists them); a bot project adds its own with ``add_step`` or in
config/seamline.toml. The turn's replies are committed with their outbox rows under the lock and
sent once it is released (bots/outbox.py), through the adapter of the channel the message came from.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from seamline.bots.dialogue import Dialogue
from seamline.bots.dialogue.reminders import Reminders, SqlReminders
from seamline.bots.link_notices import LinkNotices
from seamline.bots.outbox import Dispatcher
from seamline.bots.steps.buttons import Callback, Rate
from seamline.bots.steps.decide import Decide
from seamline.bots.steps.dedupe import RECHECK, Dedupe
from seamline.bots.steps.escalate import Escalate
from seamline.bots.steps.link import AnswerLink, redeem
from seamline.bots.steps.order import as_step, place
from seamline.bots.steps.people import Silence, ToAgents
from seamline.bots.steps.remind import REMINDER, Remind, reaching
from seamline.bots.steps.reply import SendReplies, outgoing
from seamline.bots.steps.store import MASK, StoreInbound
from seamline.bots.steps.turn import BUILTIN, OnStored, Step, Turn, chain
from seamline.bots.steps.understand import Typing, Understand
from seamline.nlu.parse import Entity, Parse
from seamline.nlu.understanding import Understanding
from seamline.shared import logs
from seamline.shared.errors import StoreError
from seamline.shared.handoff_states import WITH_PEOPLE
from seamline.shared.history import StoredMessage, new_id
from seamline.shared.identity import Customer
from seamline.shared.linking import Linker
from seamline.shared.message import Attachment, Message, Reply, utcnow
from seamline.shared.metrics import MESSAGES, PIPELINE_SECONDS
from seamline.shared.session import Session, SessionStore
from seamline.shared.storage.customers import SqlCustomerStore
from seamline.shared.storage.outbox import SqlOutbox
from seamline.shared.storage.sql import SqlChatStore

log = logging.getLogger(__name__)
__all__ = ["MASK", "Adapter", "Handled", "OnStored", "Pipeline"]


class Adapter(Protocol):
    channel: str

    async def send(self, address: str, reply: Reply) -> None: ...


@dataclass(frozen=True)
class Handled:
    duplicate: bool = False
    inbound: StoredMessage | None = None
    replies: tuple[StoredMessage, ...] = field(default=())


class Pipeline:
    def __init__(
        self,
        *,
        store: SqlChatStore,
        sessions: SessionStore,
        understanding: Understanding,
        dialogue: Dialogue,
        handoff=None,
        default_language: str = "en",
        linker: Linker | None = None,
        steps: Iterable[Step] = (),
        reminders: Reminders | None = None,
        outbox_max_attempts: int = 10,
    ) -> None:
        """``steps``: a project's own steps, each placed by its ``before`` / ``after`` attribute
        (a step name) if it has one, else at the end of the walk. ``reminders``: where scheduled
        reminders are kept (by default on ``store``'s database); ``outbox_max_attempts``: sends of
        one reply before it is given up."""
        self._store = store
        self._linker = linker
        self._sessions = sessions
        self.understanding = understanding
        self._dialogue = dialogue
        self._handoff = handoff  # handoff.service.Handoff: escalation, queues, agents
        self._default_language = default_language
        self._adapters: dict[str, Adapter] = {}
        self.reminders: Reminders = reminders or SqlReminders(store=store)
        self.outbox = SqlOutbox(store=store)
        # Sends what the turns committed; the app starts its sweep (rows of dead workers, retries).
        self.dispatcher = Dispatcher(
            outbox=self.outbox, store=store, adapters=self._adapters, max_attempts=outbox_max_attempts
        )
        self._link_notices = LinkNotices(
            store=store,
            sessions=sessions,
            dialogue=dialogue,
            send=self.send_to_customer,
            default_language=default_language,
        )
        # Called with the survivor's id when two customers became one (the widget refreshes its history).
        self.on_linked: list[Callable[[str], Awaitable[None]]] = []
        self._steps: list[Step] = self._builtin()
        for step in steps:
            self.add_step(step, before=getattr(step, "before", None), after=getattr(step, "after", None))
        self._walk = chain(self._steps)

    def _builtin(self) -> list[Step]:
        """The built-in walk, in order (docs/pipeline.md says what each step does)."""
        store, handoff = self._store, self._handoff
        steps: list[Step] = [
            Dedupe(store=store),
            StoreInbound(store=store),
            ToAgents(handoff=handoff),
            AnswerLink(
                store=store,
                dialogue=self._dialogue,
                notices=self._link_notices,
                handoff=handoff,
                on_linked=self.on_linked,
            ),
            SendReplies(store=store, outbox=self.outbox, handoff=handoff),
            Understand(understanding=self.understanding),
            Silence(linking=self._linker is not None),
            Typing(),
            Rate(handoff=handoff, dialogue=self._dialogue),
            Callback(handoff=handoff),
            Decide(dialogue=self._dialogue, linker=self._linker, channels=self._adapters, store=store),
            Remind(reminders=self.reminders),
            Escalate(handoff=handoff),
        ]
        assert tuple(s.name for s in steps) == BUILTIN, "bots/steps/turn.py BUILTIN lists the built-in steps"
        return steps

    @property
    def steps(self) -> tuple[Step, ...]:
        """The walk, in order."""
        return tuple(self._steps)

    def add_step(self, step: Step, *, before: str | None = None, after: str | None = None) -> None:
        """Put a step in the walk: before or after the step named so, or at the end."""
        step = as_step(step, "Pipeline.add_step")
        self._steps = place(self._steps, step, before=before, after=after)
        self._walk = chain(self._steps)

    def remove_step(self, name: str) -> Step:
        """Take the step named ``name`` out of the walk (to replace a built-in one, say)."""
        for step in self._steps:
            if step.name == name:
                self._steps = [s for s in self._steps if s is not step]
                self._walk = chain(self._steps)
                return step
        raise KeyError(f"no step named {name!r}; the steps are {[s.name for s in self._steps]}")

    def register(self, adapter: Adapter) -> None:
        self._adapters[adapter.channel] = adapter

    @property
    def store(self) -> SqlChatStore:
        return self._store

    async def history(self, channel: str, sender: str, limit: int = 100) -> list[StoredMessage]:
        """Everything this sender's customer said and was told, on every channel; [] for a stranger."""
        customer = await self._store.find_customer(channel, sender)
        return [] if customer is None else await self._store.history(customer.id, limit)

    async def handle(
        self,
        message: Message,
        on_stored: OnStored | None = None,
        on_answering: OnStored | None = None,
        *,
        redelivery: bool = False,
    ) -> Handled:
        """Walk one message, then send its replies (outside the session lock). ``on_stored`` runs
        once it is durable (the widget's acknowledgement); ``on_answering`` once it is clear the bot
        will answer it (a messenger's "typing…"). ``redelivery``: the message may have been walked
        before (an inbox row taken over, a retry): the database, not only the session, says whether
        its turn was committed."""
        started = time.perf_counter()
        MESSAGES.labels(message.channel, "in").inc()
        handled = await self._turn(message, on_stored, on_answering, redelivery)
        PIPELINE_SECONDS.labels(message.channel).observe(time.perf_counter() - started)
        if handled.replies:
            await self.dispatcher.deliver(row.id for row in handled.replies)
        return handled

    async def _turn(
        self, message: Message, on_stored: OnStored | None, on_answering: OnStored | None, redelivery: bool
    ) -> Handled:
        """The walk under the customer's session lock: everything up to the turn's commit."""
        customer = await self._store.resolve_customer(
            message.channel, message.sender, message.address, message.sender_name, message.language
        )
        link = await redeem(
            self._linker, store=self._store, sessions=self._sessions, message=message, customer=customer
        )
        if link is not None and link.linked and link.survivor_id != customer.id:
            customer = await self._store.fresh_customer(message.channel, message.sender) or customer
        for _ in range(3):
            async with self._sessions.lock(customer.id):
                session = await self._sessions.load(customer.id)
                if session is None and not customer.new:
                    # Lost, expired, or this identity was linked to another customer or erased (maybe by
                    # another process): ask the database who it belongs to before rebuilding.
                    fresh = await self._store.fresh_customer(message.channel, message.sender)
                    if fresh is None:  # erased: whoever writes now is a new customer
                        fresh = await self._store.resolve_customer(
                            message.channel, message.sender, message.address, message.sender_name, message.language
                        )
                    if fresh.id != customer.id:
                        customer = fresh
                        continue
                if session is None:  # its seen ids are read from the database: answered ones only
                    session = await self._rebuild_session(customer, message)
                logs.conversation.set(session.conversation_id)
                turn = Turn(message=message, session=session, link=link, on_stored=on_stored, on_answering=on_answering)
                if redelivery:
                    turn.data[RECHECK] = True
                try:
                    await self._walk(turn)
                finally:
                    await self._sessions.save(session)
                if turn.duplicate:
                    return Handled(duplicate=True)
                return Handled(inbound=turn.inbound, replies=turn.sent)
        raise StoreError(f"{message.channel} {message.sender}: the customer kept changing while loading")

    async def handle_retrying(
        self,
        message: Message,
        on_stored: OnStored | None = None,
        *,
        attempts: int = 5,
        backoff: float = 0.5,
        on_answering: OnStored | None = None,
        redelivery: bool = False,
    ) -> Handled:
        """``handle`` for a message the platform was already told we have: a storage outage (database or
        Redis down) is waited out, bounded, instead of losing what the customer wrote. Safe to repeat:
        a platform id counts as seen only once its turn is committed."""
        for attempt in range(1, attempts + 1):
            try:
                return await self.handle(message, on_stored, on_answering, redelivery=redelivery or attempt > 1)
            except StoreError:
                if attempt == attempts:
                    raise
                delay = min(backoff * 2 ** (attempt - 1), 30.0)
                log.warning(
                    "%s message %s: storage failed, retrying in %.1f s", message.channel, message.external_id, delay
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def answer_unanswered(self, channel: str, within: timedelta = timedelta(days=1)) -> int:
        """Walk again the messages stored on ``channel`` (within the last ``within``) whose turn never
        committed: a crash came after the message was stored (and acknowledged) but before it was
        answered. Returns how many were answered. The widget's messages are recovered this way; the
        messengers' updates through their inbox (bots/intake.py)."""
        answered = 0
        for stored in await self._store.unanswered(channel, utcnow() - within):
            message = Message(
                channel=channel,
                address=stored.identity or "",
                sender=stored.identity or "",
                text=stored.text,
                payload=stored.payload,
                external_id=stored.external_id,
                attachments=tuple(Attachment(**a) for a in stored.attachments or ()),
                ts=stored.created_at,
            )
            try:
                handled = await self.handle(message, redelivery=True)
            except Exception:
                log.exception("%s message %s: answering it after a restart failed", channel, stored.external_id)
                continue
            answered += not handled.duplicate
        return answered

    async def send_to_customer(self, customer_id: str, reply: Reply, identities) -> str | None:
        """A reply nobody asked for just now, stored already (a link notice): through the outbox, to
        ``identities[0]`` if it is the only one, else to whichever channel reaches the customer at
        send time. Returns the channel used, None when it was not sent now (it may be later)."""
        identities = list(identities)
        if not identities:
            return None
        only = identities[0] if len(identities) == 1 else None
        row = StoredMessage(
            id=reply.id or new_id(),
            conversation_id="",
            customer_id=customer_id,
            channel="",
            direction="out",
            role=reply.role.value,
            text="",
            created_at=reply.ts,
        )
        rows = self.outbox.rows(
            [row],
            [reply],
            channel=only.channel if only else "",
            address=only.address if only else "",
            identity=only.external_id if only else "",
        )
        await self._store.write_all(rows)
        used = await self.dispatcher.deliver([row.id])
        return used[0] if used else None

    async def keep(self, stored: StoredMessage, reply: Reply) -> None:
        """Store a reply said from outside a turn (an agent's, the queue's notices) with its outbox
        row, in one commit; ``deliver`` sends it. Sent on whichever channel reaches the customer then."""
        await self._store.append_all([stored], self.outbox.rows([stored], [reply]))

    async def deliver(self, ids: Iterable[str]) -> list[str]:
        """Send the kept rows with these ids that this worker holds; the channels used."""
        return await self.dispatcher.deliver(ids)

    async def trigger(
        self, customer_id: str, intent: str, entities: Iterable[tuple[str, Any]] = (), *, reminder: str = ""
    ) -> tuple[StoredMessage, ...] | None:
        """A turn without a customer message (a fired reminder, Rasa's external event): ``intent``
        with confidence 1 and ``entities`` go through the dialogue (the ``decide`` and ``remind``
        steps) under the session's lock, the replies are stored in the history and sent on the channel
        that reaches the customer now (their last channel, else the most recently active reachable
        one, falling back to the next). None, and nothing said, while people hold the conversation or
        when no identity of the customer is left."""
        identities = await SqlCustomerStore(self._store).reachable_identities(customer_id)
        if not identities:
            return None
        async with self._sessions.lock(customer_id):
            session = await self._sessions.load(customer_id)
            ordered = reaching(identities, session.last_channel if session else None)
            target = ordered[0]
            message = Message(channel=target.channel, address=target.address, sender=target.external_id)
            if session is None:
                customer = await self._store.find_customer(target.channel, target.external_id)
                if customer is None or customer.id != customer_id:
                    return None
                session = await self._rebuild_session(customer, message)
                # No message to tell the language by: the one their last message was understood in.
                said = [m.nlu for m in await self._store.history(customer_id, 20) if m.direction == "in" and m.nlu]
                session.language = next((n["language"] for n in reversed(said) if n.get("language")), session.language)
            if session.handoff != "bot":
                return None
            found = tuple((str(kind), value) for kind, value in entities)
            parse = Parse(intent, 1.0, ((intent, 1.0),), tuple(Entity(k, str(v), str(v), 0, 0) for k, v in found), None)
            turn = Turn(message=message, session=session, parse=parse, data={REMINDER: reminder or intent})
            try:
                await chain([s for s in self._steps if s.name in ("decide", "remind")])(turn)
                reason = turn.decision.escalate if turn.decision is not None else None
                if reason and self._handoff is not None:
                    turn.replies.extend(
                        await self._handoff.escalate(
                            session, reason=reason, parse=parse, message=message, inbound_id=""
                        )
                    )
                stored = outgoing(message, session, turn.replies)
                await self._store.append_all(stored, self.outbox.rows(stored, turn.replies))
            finally:
                await self._sessions.save(session)
        await self.dispatcher.deliver(row.id for row in stored)
        return stored

    async def _rebuild_session(self, customer: Customer, message: Message) -> Session:
        """New, expired or evicted: rebuild what the database knows."""
        conversation = await self._store.open_conversation(customer)
        return Session(
            customer_id=customer.id,
            conversation_id=conversation.id,
            language=customer.language or message.language or self._default_language,
            handoff=conversation.state if conversation.state in WITH_PEOPLE else "bot",
            last_channel=customer.last_channel,
            attributes=dict(customer.attributes),
            seen=[] if customer.new else await self._store.recent_external_ids(customer.id),
        )
