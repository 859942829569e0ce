"""Who is there to take a conversation, and giving it to them: agents' status, logging out,
being connected (docs/handoff.md, "Presence"), and choosing the agent for a waiting conversation.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from seamline.handoff.agents import Agent, Agents, token_digest
from seamline.handoff.delivery import Delivery
from seamline.handoff.inbox import ConsoleInbox
from seamline.handoff.machine import BOT_SILENT
from seamline.handoff.queries import Queries
from seamline.handoff.storage import ConversationInfo, HandoffStore
from seamline.handoff.transitions import Transitions
from seamline.shared.message import utcnow
from seamline.shared.session import Session

log = logging.getLogger(__name__)


class Presence:
    def __init__(
        self,
        *,
        agents: Agents,
        inbox: ConsoleInbox,
        rows: HandoffStore,
        queries: Queries,
        transitions: Transitions,
        delivery: Delivery,
        grace: timedelta = timedelta(seconds=90),
    ) -> None:
        self.agents = agents
        self.inbox = inbox
        self.rows = rows
        self.queries = queries
        self.transitions = transitions
        self.delivery = delivery
        self.grace = grace  # see ``connected``; SEAMLINE_AGENT_GRACE_SECONDS

    async def set_status(self, agent: Agent, status: str) -> None:
        await self.agents.set_status(agent.id, status)
        await self.inbox.publish({"type": "agent", "agent": {**agent.to_dict(), "status": status}})
        if status == "offline":  # what they held (or was passed to them) goes back to its queue
            for state in ("with_agent", "transferred"):
                for info in await self.queries.conversations(state, agent_id=agent.id):
                    await self.requeue(info, by=agent.email, reason="agent went offline")
        elif status == "online":
            await self.offer_waiting()

    async def log_out(self, agent: Agent, token: str) -> None:
        """End one login, in every process: its consoles close and the token is refused at once. The
        agent's last login ending sets them offline: no new customers, and what they held is queued
        again (a person who logged out is not "with" anyone)."""
        await self.agents.logout(token)
        await self.inbox.revoke(agent.id, token_digest(token))
        if not await self.agents.logins(agent.id):
            current = await self.agents.get(agent.id)
            if current is not None and current.status != "offline":
                await self.set_status(current, "offline")

    def connected(self, agent: Agent, *, now: datetime | None = None) -> bool:
        """A person is at the console: one is open in this process, or the agent was seen (a console
        in another process, an API call) within ``grace``. Only such an agent is given a
        customer, so "<name> is with you now" is said only when someone is there."""
        if agent.id in self.inbox.agents_here():
            return True
        return agent.seen_at is not None and agent.seen_at >= (now or utcnow()) - self.grace

    async def online(
        self, queue: str, *, now: datetime | None = None, agents: list[Agent] | None = None
    ) -> list[Agent]:
        """Agents online, at a console, with ``queue`` among their skills (of ``agents``, read once by
        a caller asking for several queues; else of every agent)."""
        return [
            a
            for a in (await self.agents.all() if agents is None else agents)
            if a.status == "online" and (not a.queues or queue in a.queues) and self.connected(a, now=now)
        ]

    async def set_gone_offline(self, after: timedelta, *, now: datetime | None = None) -> list[Agent]:
        """Agents who closed the console without logging out (no console open in any process, no API
        call for ``after``) are set offline, so nothing is given to them and what they held goes back to
        the queue. Agents with a console open in this process are here, whatever the clock says."""
        here = self.inbox.agents_here()
        gone = [a for a in await self.agents.gone((now or utcnow()) - after) if a.id not in here]
        for agent in gone:
            log.info("agent %s not seen for %s: set offline", agent.id, after)  # an id, not their e-mail
            await self.set_status(agent, "offline")
        for info in await self.rows.orphaned():  # held by an agent who was removed: queued again too
            await self.requeue(info, by="seamline", reason="the agent was removed")
        return gone

    async def requeue(self, info: ConversationInfo, *, by: str, reason: str) -> None:
        """Back to its queue and offered again; the customer is told when nobody takes it at once."""
        async with self.transitions.session(info) as session:
            now = await self.queries.conversation(info.id)
            if now.state not in BOT_SILENT or now.agent_id != info.agent_id:
                return  # moved on meanwhile (resolved, released, queued by another process)
            await self.transitions.move(session, "queued", by=by, reason=reason, queue=info.queue, agent_id=None)
            taken = await self.assign(session, self.queries.queue_of(info))
        if taken is None:
            await self.delivery.tell(info, "handoff_requeued")

    async def offer_waiting(self) -> None:
        """Give waiting conversations to agents with free capacity (after an agent comes online)."""
        for info in await self.queries.conversations("queued"):
            async with self.transitions.session(info) as session:
                if session.handoff != "queued":
                    continue
                agent = await self.assign(session, self.queries.queue_of(info))
            if agent is not None:
                await self.delivery.tell(info, "handoff_assigned", name=agent.name)

    async def assign(self, session: Session, queue: str) -> Agent | None:
        """Offer to the least-busy online agent with the queue among their skills and room left."""
        async with self.transitions.assigning():
            candidates = await self.online(queue)
            if not candidates:
                return None
            loads = await self.queries.loads([a.id for a in candidates])
            free = [a for a in candidates if loads.get(a.id, 0) < a.capacity]
            if not free:
                return None
            best = min(free, key=lambda a: (loads.get(a.id, 0), a.name))
            await self.transitions.move(
                session,
                "with_agent",
                by="router",
                reason="assigned to the least busy agent",
                queue=queue,
                agent_id=best.id,
            )
            return best
