"""Human handoff: escalation into queues, assignment to agents, and what agents do.

The one owner of a conversation's handoff state. The pipeline asks it whether a message goes to
people and tells it what customers write; the agent API and console call the agent actions.
Every action that changes a conversation holds the customer's session lock, changes the
conversation row and the session together, records an event (who, why, when) and tells the
live inboxes.
"""
from __future__ import annotations

import logging
import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from seamline.handoff.agents import Agent, AgentStore
from seamline.handoff.inbox import Inbox
from seamline.handoff.machine import BOT_SILENT, WITH_PEOPLE, check
from seamline.handoff.presence import Presence
from seamline.handoff.permissions import refusal
from seamline.handoff.routing import Routing
from seamline.shared.errors import HandoffError
from seamline.shared.history import StoredMessage, new_id
from seamline.shared.message import Button, Reply, Role, utcnow
from seamline.shared.storage.models import ConversationRow, EventRow
from seamline.shared.storage.sql import aware

log = logging.getLogger(__name__)
MINUTES_PER_CUSTOMER = 4  # the wait estimate before any is measured: per customer ahead, per online agent
HANDLING_WINDOW = timedelta(days=7)  # measured handling times: resolved conversations of this long
HANDLING_SAMPLES, HANDLING_MIN_SAMPLES = 50, 5


class Forbidden(HandoffError):
    pass


class NotFound(HandoffError):
    pass


@dataclass(frozen=True)
class ConversationInfo:
    id: str
    customer_id: str
    state: str
    queue: str | None
    agent_id: str | None
    escalation: dict | None
    started_at: datetime | None
    queued_at: datetime | None
    updated_at: datetime | None
    position_told: int | None = None  # the queue position the customer was last told

    def summary(self) -> dict:
        return {"id": self.id, "customer_id": self.customer_id, "state": self.state, "queue": self.queue,
                "agent_id": self.agent_id, "escalation": self.escalation,
                "started_at": _iso(self.started_at), "queued_at": _iso(self.queued_at),
                "updated_at": _iso(self.updated_at)}


def _iso(value):
    return value.isoformat() if value else None


def _info(row) -> ConversationInfo:
    return ConversationInfo(row.id, row.customer_id, row.state, row.queue, row.agent_id, row.escalation,
                            aware(row.started_at), aware(row.queued_at), aware(row.updated_at), row.position_told)


class Handoff(Presence):
    def __init__(self, *, store, customers, agents: AgentStore, sessions, routing: Routing, responses,
                 inbox: Inbox | None = None, canned: tuple = (),
                 presence_grace: timedelta = timedelta(seconds=90)) -> None:
        self._store = store
        self.presence_grace = presence_grace  # see ``connected``
        self._customers = customers
        self.agents = agents
        self._sessions = sessions
        self.routing = routing
        self.canned = canned  # for the console (config/canned.yml)
        self._responses = responses
        self.inbox = inbox or Inbox()
        self.inbox.on_revoke(lambda agent_id, digest: agents.forget(agent_id, digest))
        self.pipeline = None  # set by the composition root (the pipeline and handoff know each other)

    # -- reading -------------------------------------------------------------------------------

    async def _rows(self, query):
        async with self._store.engine.connect() as conn:
            return (await conn.execute(query)).all()

    async def conversation(self, conversation_id: str) -> ConversationInfo:
        rows = await self._rows(select(ConversationRow).where(ConversationRow.id == conversation_id))
        if not rows:
            raise NotFound(f"no conversation {conversation_id}")
        return _info(rows[0])

    async def conversations(self, state: str | None = None, *, queue: str | None = None,
                            agent_id: str | None = None, limit: int = 200, offset: int = 0,
                            visible_to: Agent | None = None) -> list[ConversationInfo]:
        """``visible_to``: only what that agent may read (handoff/permissions.py)."""
        query = select(ConversationRow)
        if visible_to is not None and not visible_to.is_admin and visible_to.queues:
            mine = ConversationRow.agent_id == visible_to.id
            skills = ConversationRow.queue.in_(list(visible_to.queues))
            if self.routing.default_queue in visible_to.queues:
                skills = skills | ConversationRow.queue.is_(None)
            query = query.where(mine | skills)
        if state:
            query = query.where(ConversationRow.state == state)
        if queue:
            query = query.where(ConversationRow.queue == queue)
        if agent_id:
            query = query.where(ConversationRow.agent_id == agent_id)
        order = ConversationRow.queued_at if state == "queued" else ConversationRow.updated_at.desc()
        query = query.order_by(order, ConversationRow.id).limit(limit).offset(offset)  # id: a stable page order
        return [_info(r) for r in await self._rows(query)]

    async def queues(self) -> list[dict]:
        rows = await self._rows(select(ConversationRow.queue, ConversationRow.state, func.count())
                                .where(ConversationRow.state.in_(list(WITH_PEOPLE)))
                                .group_by(ConversationRow.queue, ConversationRow.state))
        counts: dict[str, dict[str, int]] = {}
        for queue, state, n in rows:
            counts.setdefault(queue or self.routing.default_queue, {})[state] = n
        agents = await self.agents.all()
        now = utcnow()
        result = []
        for name in sorted(set(self.routing.queue_names) | set(counts)):
            hours = self.routing.hours(name)
            online = [a for a in agents if a.status == "online" and (not a.queues or name in a.queues)
                      and self.connected(a, now=now)]
            result.append({"name": name, "waiting": counts.get(name, {}).get("queued", 0),
                           "with_agents": counts.get(name, {}).get("with_agent", 0),
                           "transferred": counts.get(name, {}).get("transferred", 0),
                           "agents_online": len(online), "open": hours.is_open(now),
                           "opens_at": _iso(None if hours.is_open(now) else hours.next_open(now))})
        return result

    async def loads(self, agent_ids: list[str]) -> dict[str, int]:
        rows = await self._rows(select(ConversationRow.agent_id, func.count()).where(
            ConversationRow.agent_id.in_(agent_ids), ConversationRow.state.in_(list(BOT_SILENT)))
            .group_by(ConversationRow.agent_id))
        return {agent_id: int(n) for agent_id, n in rows}

    async def load(self, agent_id: str) -> int:
        rows = await self._rows(select(func.count()).select_from(ConversationRow).where(
            ConversationRow.agent_id == agent_id, ConversationRow.state.in_(list(BOT_SILENT))))
        return int(rows[0][0])

    async def readable(self, agent: Agent, conversation_id: str) -> ConversationInfo:
        """The conversation, if ``agent`` may read it (else ``Forbidden`` saying why)."""
        info = await self.conversation(conversation_id)
        self._allowed(agent, info)
        return info

    async def customer_readable(self, agent: Agent, customer_id: str) -> None:
        """An agent may see a customer's profile when they may read one of the customer's
        conversations (``Forbidden`` otherwise); an admin always."""
        if agent.is_admin:
            return
        rows = await self._rows(select(ConversationRow.queue, ConversationRow.agent_id)
                                .where(ConversationRow.customer_id == customer_id))
        if not any(refusal(agent, queue=queue, agent_id=holder, default_queue=self.routing.default_queue) is None
                   for queue, holder in rows):
            raise Forbidden("none of this customer's conversations is in a queue among your skills")

    def _allowed(self, agent: Agent, info: ConversationInfo) -> None:
        refused = refusal(agent, queue=info.queue, agent_id=info.agent_id, default_queue=self.routing.default_queue)
        if refused:
            raise Forbidden(refused)

    async def notes(self, conversation_id: str) -> list[dict]:
        rows = await self._rows(select(EventRow).where(EventRow.conversation_id == conversation_id)
                                .order_by(EventRow.id))
        return [{"kind": r.kind, "data": r.data, "at": _iso(aware(r.created_at))} for r in rows]

    # -- the bot side --------------------------------------------------------------------------

    def trigger(self, *, intent: str | None, text: str, fallbacks: int, attributes: dict) -> str | None:
        return self.routing.escalation(intent=intent, text=text, fallbacks=fallbacks, attributes=attributes)

    async def escalate(self, session, *, reason: str, parse, message, inbound_id: str) -> list[Reply]:
        """The bot passes the conversation to people (the caller holds the session lock). Returns what
        to tell the customer: who took it, or their place in the queue, or when people are back."""
        if session.handoff != "bot":
            return []
        queue, rule = self.routing.route(intent=parse.intent, text=message.text, channel=message.channel,
                                         language=parse.language or session.language,
                                         attributes=session.attributes)
        now = utcnow()
        hours = self.routing.hours(queue)
        is_open = hours.is_open(now)
        escalation = {"reason": str(reason), "reason_code": getattr(reason, "code", None),
                      "reason_params": dict(getattr(reason, "params", {})),
                      "intent": parse.intent, "confidence": round(parse.confidence, 4),
                      "queue": queue, "routed_by": rule, "channel": message.channel, "message_id": inbound_id,
                      "at": now.isoformat(), "after_hours": not is_open, "by": "bot"}
        await self._move(session, "queued", by="bot", reason=reason, queue=queue, agent_id=None,
                         escalation=escalation, queued_at=now)
        language = session.language
        if is_open:
            agent = await self._assign(session, queue)
            if agent is not None:
                return [self._say("handoff_assigned", language, name=agent.name)]
            position, minutes = await self._position(session.conversation_id, queue)
            await self._told(session.conversation_id, position)
            return [self._say("handoff_queued", language, position=str(position), minutes=str(minutes))]
        back = hours.next_open(now)
        return [self._say("handoff_after_hours", language,
                          back=back.strftime("%d.%m %H:%M") if back else "?", timezone=hours.timezone)]

    async def customer_wrote(self, session, stored: StoredMessage) -> None:
        """Tell the inboxes about a message in a conversation people are on: while it waits, the
        consoles of agents with its queue among their skills; once an agent holds it, theirs (and
        admins', and whoever may read it and has it open)."""
        if session.handoff in WITH_PEOPLE:
            info = await self.conversation(session.conversation_id)
            holder = info.agent_id if session.handoff in BOT_SILENT else None
            await self.inbox.publish({"type": "message", "conversation_id": session.conversation_id,
                                      "message": _message(stored)}, audience=holder, queue=self._queue_of(info))

    async def customer_linked(self, session, channel: str) -> None:
        """The customer proved another channel is theirs: consoles showing them reload the profile."""
        if session.handoff in WITH_PEOPLE:
            await self.inbox.publish({"type": "customer", "conversation_id": session.conversation_id,
                                      "customer_id": session.customer_id, "linked": channel})

    # -- agent actions -------------------------------------------------------------------------

    async def claim(self, agent: Agent, conversation_id: str) -> ConversationInfo:
        info = await self.conversation(conversation_id)
        if info.state == "with_agent" and info.agent_id == agent.id:
            return info
        if info.state == "with_agent" or (info.state == "transferred" and info.agent_id not in (None, agent.id)):
            raise Forbidden("another agent holds this conversation")
        if info.state not in ("queued", "transferred"):
            raise HandoffError(f"the conversation is {info.state}, not waiting for a person")
        self._allowed(agent, info)
        async with self._session(info) as session, self._assigning():  # in this order, as in escalate
            if await self.load(agent.id) >= agent.capacity and not agent.is_admin:
                raise Forbidden(f"you are at your capacity of {agent.capacity} conversations")
            await self._move(session, "with_agent", by=agent.email, reason="claimed", queue=info.queue,
                             agent_id=agent.id)
        await self._deliver(info.customer_id, self._say("handoff_assigned", await self._language(info),
                                                       name=agent.name), info)
        await self._announce_positions(info.queue)
        return await self.conversation(conversation_id)

    async def reply(self, agent: Agent, conversation_id: str, text: str) -> dict:
        info = await self._held(agent, conversation_id)
        stored = await self._send_as_agent(info, text, agent)
        return _message(stored)

    async def note(self, agent: Agent, conversation_id: str, text: str) -> dict:
        info = await self.readable(agent, conversation_id)
        data = {"text": text, "agent": agent.email, "name": agent.name}
        await self._store.record_event("note", info.customer_id, conversation_id, data)
        await self.inbox.publish({"type": "note", "conversation_id": conversation_id, "note": data},
                                 audience=info.agent_id if info.state in BOT_SILENT else None,
                                 queue=self._queue_of(info))
        return data

    def _queue_of(self, info: ConversationInfo) -> str:
        return info.queue or self.routing.default_queue

    async def transfer(self, agent: Agent, conversation_id: str, *, to_agent: str | None = None,
                       to_queue: str | None = None, note: str = "") -> ConversationInfo:
        info = await self._held(agent, conversation_id)
        target = None
        if to_agent:
            target = await self.agents.get(to_agent) or await self.agents.by_email(to_agent)
            if target is None:
                raise NotFound(f"no agent {to_agent}")
        queue = to_queue or info.queue
        if to_queue and to_queue not in self.routing.queue_names:
            raise NotFound(f"no queue {to_queue}")
        async with self._session(info) as session:
            await self._move(session, "transferred", by=agent.email, reason=note or "transferred", queue=queue,
                             agent_id=target.id if target else None)
        if note:
            await self._store.record_event("note", info.customer_id, conversation_id,
                                           {"text": note, "agent": agent.email, "name": agent.name})
        await self._deliver(info.customer_id, self._say("handoff_transferred", await self._language(info)), info)
        return await self.conversation(conversation_id)

    async def release(self, agent: Agent, conversation_id: str) -> ConversationInfo:
        info = await self._held(agent, conversation_id, allow_queued=True)
        async with self._session(info) as session:
            await self._move(session, "bot", by=agent.email, reason="returned to the bot", queue=None, agent_id=None)
            session.fallbacks = 0
        await self._deliver(info.customer_id, self._say("handoff_back_to_bot", await self._language(info)), info)
        return await self.conversation(conversation_id)

    async def resolve(self, agent: Agent, conversation_id: str) -> ConversationInfo:
        info = await self._held(agent, conversation_id, allow_queued=True)
        async with self._session(info) as session:
            await self._move(session, "resolved", by=agent.email, reason="resolved", queue=info.queue,
                             agent_id=info.agent_id)
            conversation = await self._store.open_conversation_for(info.customer_id)
            session.conversation_id, session.handoff, session.fallbacks = conversation.id, "bot", 0
            session.slots["rating_for"] = conversation_id
        rating = self._say("handoff_rate", await self._language(info))
        rating = Reply(rating.text, tuple(Button(str(n), f"/rate {n}") for n in range(1, 6)))
        await self._deliver(info.customer_id, rating, info, conversation.id)
        return await self.conversation(conversation_id)

    async def callback(self, session, phone: str) -> None:
        """The waiting customer left a phone number (E.164) for a call back: on the conversation, so
        the queue shows it, and on the profile."""
        info = await self.conversation(session.conversation_id)
        escalation = {**(info.escalation or {}), "callback": phone}
        await self._store.run(update(ConversationRow).where(ConversationRow.id == info.id).values(
            escalation=escalation))
        await self._customers.set_attributes(session.customer_id, {"phone": phone}, source="customer")
        await self._store.record_event("callback_requested", session.customer_id, info.id, {"phone": phone})
        await self.inbox.publish({"type": "conversation", "conversation": {**info.summary(),
                                                                           "escalation": escalation}})

    async def abandon_stale(self, older_than) -> int:
        """Queued conversations whose customer has written nothing for ``older_than`` (a timedelta)
        are abandoned: they leave the queue, and the customer starts afresh with the bot."""
        from seamline.shared.storage.models import MessageRow

        cutoff = utcnow() - older_than
        count = 0
        for info in await self.conversations("queued", limit=10_000):
            last = await self._rows(select(func.max(MessageRow.created_at)).where(
                MessageRow.conversation_id == info.id, MessageRow.direction == "in"))
            when = aware(last[0][0]) if last and last[0][0] else info.queued_at
            if when is None or when > cutoff:
                continue
            async with self._session(info) as session:
                if session.handoff == "queued":
                    await self._move(session, "abandoned", by="system", reason="the customer left the queue",
                                     queue=info.queue, agent_id=None)
                    conversation = await self._store.open_conversation_for(info.customer_id)
                    session.conversation_id, session.handoff = conversation.id, "bot"
                    count += 1
        return count

    async def rate(self, session, score: int) -> None:
        conversation_id = session.slots.pop("rating_for", None)
        if conversation_id:
            await self._store.record_event("csat", session.customer_id, conversation_id, {"score": score})

    # -- inside --------------------------------------------------------------------------------

    async def _held(self, agent: Agent, conversation_id: str, *, allow_queued: bool = False) -> ConversationInfo:
        info = await self.conversation(conversation_id)
        holds = info.state in BOT_SILENT and info.agent_id == agent.id
        if not holds and not agent.is_admin:
            if info.state in BOT_SILENT and info.agent_id:
                raise Forbidden("another agent holds this conversation")
            if not (allow_queued and info.state == "queued"):
                raise Forbidden("claim the conversation first")
            self._allowed(agent, info)  # a waiting one: only of the agent's skills
        if info.state not in WITH_PEOPLE:
            raise HandoffError(f"the conversation is {info.state}")
        return info

    def _assigning(self):
        """Choosing an agent and giving them the conversation is one step: two escalations (or
        claims) at the same moment must not both see the same free place. The session store's lock,
        so with Redis it holds across processes."""
        return self._sessions.lock("handoff:assign")

    def _session(self, info: ConversationInfo):
        return _Locked(self, info)

    async def _move(self, session, state: str, *, by: str, reason: str, queue: str | None, agent_id: str | None,
                    escalation: dict | None = None, queued_at=None) -> None:
        current = session.handoff
        check(current, state)
        now = utcnow()
        values = {"state": state, "queue": queue, "agent_id": agent_id, "updated_at": now,
                  "closed_at": now if state in ("resolved", "abandoned") else None, "position_told": None}
        if escalation is not None:
            values["escalation"] = escalation
        if queued_at is not None:
            values["queued_at"] = queued_at
        if state == "with_agent" and current != "with_agent":
            values["assigned_at"] = now  # how long people take is measured from here
        await self._store.run(update(ConversationRow).where(ConversationRow.id == session.conversation_id)
                              .values(**values))
        session.handoff = state
        data = {"from": current, "to": state, "by": by, "reason": reason, "queue": queue, "agent_id": agent_id}
        await self._store.record_event("handoff", session.customer_id, session.conversation_id, data)
        if state == "queued" and current == "bot":
            await self._store.record_event("handoff_requested", session.customer_id, session.conversation_id,
                                           {"reason": reason, "queue": queue, "from": by,
                                            **({"intent": escalation.get("intent")} if escalation else {})})
        await self.inbox.publish({"type": "conversation", "conversation": {
            "id": session.conversation_id, "customer_id": session.customer_id, "state": state, "queue": queue,
            "agent_id": agent_id, "escalation": escalation, "updated_at": now.isoformat()}})

    async def handling_minutes(self, queue: str) -> float | None:
        """How long people hold a conversation of ``queue``: the median of its last resolved ones
        (at most 50, of the last 7 days); None with fewer than 5 to go by."""
        since = utcnow() - HANDLING_WINDOW
        rows = await self._rows(
            select(ConversationRow.assigned_at, ConversationRow.closed_at)
            .where(ConversationRow.queue == queue, ConversationRow.closed_at >= since,
                   ConversationRow.state == "resolved", ConversationRow.assigned_at.is_not(None))
            .order_by(ConversationRow.closed_at.desc()).limit(HANDLING_SAMPLES))
        if len(rows) < HANDLING_MIN_SAMPLES:
            return None
        return statistics.median((aware(c) - aware(a)).total_seconds() / 60 for a, c in rows)

    async def _wait_per_place(self, queue: str) -> float:
        """Minutes of waiting per place in ``queue``: a place frees up every handling time divided by
        the conversations the online agents with the skill can hold at once. Before there is any
        history to measure: MINUTES_PER_CUSTOMER per online agent."""
        online = [a for a in await self.agents.all()
                  if a.status == "online" and (not a.queues or queue in a.queues) and self.connected(a)]
        handling = await self.handling_minutes(queue)
        if handling is None:
            return MINUTES_PER_CUSTOMER / max(1, len(online))
        return handling / max(1, sum(a.capacity for a in online))

    async def _position(self, conversation_id: str, queue: str) -> tuple[int, int]:
        waiting = await self.conversations("queued", queue=queue, limit=10_000)
        ids = [c.id for c in waiting]
        position = ids.index(conversation_id) + 1 if conversation_id in ids else len(ids) + 1
        return position, max(1, math.ceil(position * await self._wait_per_place(queue)))

    async def _announce_positions(self, queue: str | None) -> None:
        """Tell every customer still waiting in ``queue`` whose place moved up."""
        if queue is None:
            return
        waiting = await self.conversations("queued", queue=queue, limit=10_000)
        per_place = await self._wait_per_place(queue) if waiting else 0.0
        for position, info in enumerate(waiting, start=1):
            minutes = max(1, math.ceil(position * per_place))
            if position < (info.position_told or position + 1):
                await self._told(info.id, position)
                await self._deliver(info.customer_id, self._say("handoff_position", await self._language(info),
                                                               position=str(position), minutes=str(minutes)), info)

    async def _told(self, conversation_id: str, position: int) -> None:
        """Kept with the conversation, so that no process tells a customer the same place twice."""
        await self._store.run(update(ConversationRow).where(ConversationRow.id == conversation_id)
                              .values(position_told=position))

    async def _language(self, info: ConversationInfo) -> str:
        session = await self._sessions.load(info.customer_id)
        return session.language if session else "en"

    def _say(self, key: str, language: str, **slots: str) -> Reply:
        return self._responses.render(key, language, slots)

    async def _send_as_agent(self, info: ConversationInfo, text: str, agent: Agent) -> StoredMessage:
        return await self._deliver(info.customer_id, Reply(text, role=Role.AGENT), info, sender=agent)

    async def _deliver(self, customer_id: str, reply: Reply, info: ConversationInfo,
                       conversation_id: str | None = None, sender: Agent | None = None) -> StoredMessage:
        """Store and send to the channel the customer is on now (their last channel, if reachable;
        else the most recently active reachable one)."""
        session = await self._sessions.load(customer_id)
        last = session.last_channel if session else None
        identities = [i for i in await self._store.identities(customer_id) if i.reachable]
        if len(identities) > 1 and not any(i.channel == last for i in identities):
            identities = await self._customers.reachable_identities(customer_id)  # most recently active first
        identities.sort(key=lambda i: i.channel != last)  # stable: the last channel first
        target = identities[0] if identities else None
        stored = StoredMessage(
            id=new_id(), conversation_id=conversation_id or info.id, customer_id=customer_id,
            channel=target.channel if target else (last or "web"), direction="out", role=reply.role.value,
            text=reply.text, identity=target.external_id if target else None,
            buttons=[{"title": b.title, "payload": b.payload} for b in reply.buttons],
            nlu={"agent": sender.email, "agent_name": sender.name} if sender else None, created_at=utcnow())
        await self._store.append(stored)
        holder = info.agent_id if info.state in BOT_SILENT else None
        await self.inbox.publish({"type": "message", "conversation_id": info.id, "message": _message(stored)},
                                 audience=holder, queue=self._queue_of(info))
        if self.pipeline is not None and identities:
            used = await self.pipeline.send_to_customer(
                customer_id, Reply(reply.text, reply.buttons, reply.role, stored.id, stored.created_at), identities)
            if used is None:
                log.info("reply %s to %s is stored; no channel reached them now", stored.id, customer_id)
        return stored


class _Locked:
    """``async with`` a conversation's customer session, locked, saved after."""

    def __init__(self, handoff: Handoff, info: ConversationInfo) -> None:
        self._handoff, self._info = handoff, info
        self._lock = None
        self.session = None

    async def __aenter__(self):
        handoff, info = self._handoff, self._info
        self._lock = handoff._sessions.lock(info.customer_id)
        await self._lock.__aenter__()
        session = await handoff._sessions.load(info.customer_id)
        if session is None or session.conversation_id != info.id:
            from seamline.shared.session import Session
            kept = session
            session = Session(customer_id=info.customer_id, conversation_id=info.id,
                              language=kept.language if kept else "en", handoff=info.state,
                              last_channel=kept.last_channel if kept else None,
                              seen=kept.seen if kept else await handoff._store.recent_external_ids(info.customer_id))
            self._detached = kept is not None and kept.conversation_id != info.id
        else:
            self._detached = False
        session.handoff = info.state if session.handoff != info.state else session.handoff
        self.session = session
        return session

    async def __aexit__(self, *exc):
        try:
            if exc[0] is None and not self._detached:
                await self._handoff._sessions.save(self.session)
        finally:
            await self._lock.__aexit__(*exc)


def _message(m: StoredMessage) -> dict:
    out = {"id": m.id, "conversation_id": m.conversation_id, "channel": m.channel, "role": m.role,
           "direction": m.direction, "text": m.text, "ts": _iso(m.created_at)}
    if m.role == "customer":
        nlu = m.nlu or {}
        out.update(intent=m.intent, confidence=m.confidence, entities=nlu.get("entities", []))
    if m.role == "agent" and m.nlu:
        out["agent"] = m.nlu.get("agent_name")
    if m.buttons:
        out["buttons"] = m.buttons
    return out
