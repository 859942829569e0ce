"""Agents (people who take over conversations), their passwords and their login tokens.

Passwords are hashed with scrypt (memory-hard, from the standard library): 16 MiB and a random
salt per password. Console sessions and API tokens are random 256-bit values; only their
SHA-256 digests are stored, with an expiry. Console sessions also carry a CSRF token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Executable

from seamline.handoff.passwords import problem as password_problem
from seamline.shared.errors import StoreError
from seamline.shared.history import new_id
from seamline.shared.message import utcnow
from seamline.shared.storage.models import AgentRow, AgentTokenRow
from seamline.shared.storage.sql import SqlChatStore, aware

log = logging.getLogger(__name__)

SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # 16 MiB per hash
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ROLES = ("agent", "admin")
STATUSES = ("online", "away", "offline")
SESSION_TTL = timedelta(hours=12)
API_TTL = timedelta(days=90)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, maxmem=64 * 1024 * 1024, dklen=32, **SCRYPT)
    return (
        "scrypt${n}${r}${p}$".format(**SCRYPT)
        + base64.b64encode(salt).decode()
        + "$"
        + base64.b64encode(digest).decode()
    )


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        again = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 1024 * 1024,
            dklen=32,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(again, base64.b64decode(digest))


# A hash to check against when the e-mail is unknown, so a wrong e-mail costs as long as a wrong password.
_DUMMY = hash_password(secrets.token_hex(8))


@dataclass(frozen=True)
class Agent:
    id: str
    email: str
    name: str
    role: str = "agent"
    queues: tuple[str, ...] = ()
    capacity: int = 5
    status: str = "offline"
    seen_at: datetime | None = field(default=None, compare=False)  # a console open or an API call

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "queues": list(self.queues),
            "capacity": self.capacity,
            "status": self.status,
            "seen_at": self.seen_at.isoformat() if self.seen_at else None,
        }


@dataclass(frozen=True)
class Login:
    agent: Agent
    token: str
    csrf: str | None
    kind: str


def _agent(row: Any) -> Agent:
    return Agent(
        row.id, row.email, row.name, row.role, tuple(row.queues or ()), row.capacity, row.status, aware(row.seen_at)
    )


class AgentDirectory(Protocol):
    """Who the agents are and whether they are there: what handoff routes by."""

    async def get(self, agent_id: str) -> Agent | None: ...

    async def by_email(self, email: str) -> Agent | None: ...

    async def all(self) -> list[Agent]: ...

    async def set_status(self, agent_id: str, status: str) -> None: ...

    async def seen(self, agent_id: str) -> None: ...

    async def gone(self, before: datetime) -> list[Agent]: ...


class AgentLogins(Protocol):
    """Console sessions and API tokens: made, checked (cached per process), ended."""

    async def login(self, email: str, password: str, *, kind: str = "session") -> Login | None: ...

    async def authenticate(self, token: str) -> tuple[Agent, str | None, str] | None: ...

    async def logins(self, agent_id: str) -> int: ...

    async def logout(self, token: str) -> None: ...

    async def end_logins(self, agent_id: str) -> None: ...

    def forget(self, agent_id: str | None = None, digest: str | None = None) -> None: ...


class AgentAccounts(Protocol):
    """Adding, changing and removing agents (``seamline agents``)."""

    async def add(
        self, email: str, *, name: str, password: str, queues: list[str], role: str = "agent", capacity: int = 5
    ) -> Agent: ...

    async def change(
        self,
        email: str,
        *,
        name: str | None = None,
        queues: list[str] | None = None,
        role: str | None = None,
        capacity: int | None = None,
        password: str | None = None,
    ) -> Agent: ...

    async def remove(self, email: str) -> Agent: ...


class Agents(AgentDirectory, AgentLogins, Protocol):
    """What handoff and the console need: the directory and the logins."""


class AgentStore:
    """The SQL backend of every agent protocol above (shares the chat store's engine and writer)."""

    # A checked token is trusted this long without asking the database again (per process; a
    # logout or a status change here forgets it at once).
    CACHE_SECONDS = 30.0
    # An agent's "last seen" (an open console or any API call) is written at most this often.
    SEEN_EVERY = 30.0

    def __init__(self, chat: SqlChatStore) -> None:
        self.engine = chat.engine
        self._writer = chat.writer
        self._tokens: dict[str, tuple[float, tuple[Agent, str | None, str, datetime]]] = {}
        self._seen: dict[str, float] = {}

    async def _all(self, query: Executable) -> list[Any]:
        try:
            async with self.engine.connect() as conn:
                return list((await conn.execute(query)).all())
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read agents: {exc}") from exc

    async def add(
        self, email: str, *, name: str, password: str, queues: list[str], role: str = "agent", capacity: int = 5
    ) -> Agent:
        email = email.strip().lower()
        if not EMAIL.match(email):
            raise ValueError(f"{email!r} is not an e-mail address")
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if weak := password_problem(password, email):
            raise ValueError(weak)
        if not 1 <= capacity <= 100:
            raise ValueError("capacity must be 1..100")
        agent = Agent(
            new_id(),
            email,
            name.strip() or email,
            role,
            tuple(q.strip() for q in queues if q.strip()),
            capacity,
            "offline",
        )
        hashed = await asyncio.to_thread(hash_password, password)
        try:
            await self._writer.write(
                insert(AgentRow),
                {
                    "id": agent.id,
                    "email": email,
                    "name": agent.name,
                    "password_hash": hashed,
                    "role": role,
                    "queues": list(agent.queues),
                    "capacity": capacity,
                    "status": "offline",
                    "created_at": utcnow(),
                },
            )
        except StoreError as exc:
            if await self.by_email(email):
                raise ValueError(f"an agent with the e-mail {email} exists already") from exc
            raise
        return agent

    async def change(
        self,
        email: str,
        *,
        name: str | None = None,
        queues: list[str] | None = None,
        role: str | None = None,
        capacity: int | None = None,
        password: str | None = None,
    ) -> Agent:
        """Change what is given; a new password also ends every login of the agent (the caller tells
        the serving processes: ``Inbox.revoke``)."""
        agent = await self.by_email(email)
        if agent is None:
            raise LookupError(f"no agent {email.strip().lower()}")
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = name.strip() or agent.email
        if queues is not None:
            values["queues"] = [q.strip() for q in queues if q.strip()]
        if role is not None:
            if role not in ROLES:
                raise ValueError(f"role must be one of {', '.join(ROLES)}")
            values["role"] = role
        if capacity is not None:
            if not 1 <= capacity <= 100:
                raise ValueError("capacity must be 1..100")
            values["capacity"] = capacity
        if password is not None:
            if weak := password_problem(password, agent.email):
                raise ValueError(weak)
            values["password_hash"] = await asyncio.to_thread(hash_password, password)
        if not values:
            raise ValueError("nothing to change: give --name, --queues, --role, --capacity or --password")
        await self._writer.write(update(AgentRow).where(AgentRow.id == agent.id).values(**values), {})
        if password is not None or role is not None:
            await self.end_logins(agent.id)
        changed = await self.get(agent.id)
        if changed is None:  # removed meanwhile by another process
            raise LookupError(f"no agent {agent.email}")
        return changed

    async def end_logins(self, agent_id: str) -> None:
        """Every login of the agent ends (a new password, a new role, removal)."""
        self.forget(agent_id)
        await self._writer.write(delete(AgentTokenRow).where(AgentTokenRow.agent_id == agent_id), {})

    async def remove(self, email: str) -> Agent:
        """The agent and their logins are deleted; what they held is queued again by the minute's
        sweep of the serving processes (``Handoff.set_gone_offline``)."""
        agent = await self.by_email(email)
        if agent is None:
            raise LookupError(f"no agent {email.strip().lower()}")
        await self.end_logins(agent.id)
        await self._writer.write(delete(AgentRow).where(AgentRow.id == agent.id), {})
        return agent

    async def by_email(self, email: str) -> Agent | None:
        rows = await self._all(select(AgentRow).where(AgentRow.email == email.strip().lower()))
        return _agent(rows[0]) if rows else None

    async def get(self, agent_id: str) -> Agent | None:
        rows = await self._all(select(AgentRow).where(AgentRow.id == agent_id))
        return _agent(rows[0]) if rows else None

    async def all(self) -> list[Agent]:
        return [_agent(r) for r in await self._all(select(AgentRow).order_by(AgentRow.name))]

    async def set_status(self, agent_id: str, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        self.forget(agent_id)
        await self._writer.write(update(AgentRow).where(AgentRow.id == agent_id).values(status=status), {})

    def forget(self, agent_id: str | None = None, digest: str | None = None) -> None:
        """Drop cached tokens: one (``digest``), all of an agent's, or (no arguments) all, so the next
        use asks the database."""
        if agent_id is None and digest is None:
            self._tokens = {}
            return
        self._tokens = {
            k: v for k, v in self._tokens.items() if not (k == digest or (digest is None and v[1][0].id == agent_id))
        }

    async def seen(self, agent_id: str) -> None:
        """The agent is here (a console is open, or they called the API); written at most every
        ``SEEN_EVERY`` seconds per process. A failed write is only logged: it must not fail a request."""
        now = time.monotonic()
        if now - self._seen.get(agent_id, -self.SEEN_EVERY) < self.SEEN_EVERY:
            return
        self._seen[agent_id] = now
        try:
            await self._writer.write(update(AgentRow).where(AgentRow.id == agent_id).values(seen_at=utcnow()), {})
        except StoreError as exc:
            log.warning("could not record that agent %s is here: %s", agent_id, exc)

    async def gone(self, before: datetime) -> list[Agent]:
        """Agents not offline who were last seen before ``before`` (or never)."""
        return [
            _agent(r)
            for r in await self._all(
                select(AgentRow)
                .where(AgentRow.status != "offline")
                .where((AgentRow.seen_at.is_(None)) | (AgentRow.seen_at < before))
            )
        ]

    async def login(self, email: str, password: str, *, kind: str = "session") -> Login | None:
        rows = await self._all(select(AgentRow).where(AgentRow.email == (email or "").strip().lower()))
        # scrypt takes ~50 ms of CPU: in a thread (it releases the GIL), not on the event loop that
        # serves every conversation. An unknown e-mail costs the same, so timing tells nothing.
        stored = rows[0].password_hash if rows else _DUMMY
        if not await asyncio.to_thread(check_password, password or "", stored) or not rows:
            return None
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24) if kind == "session" else None
        now = utcnow()
        await self._writer.write(
            insert(AgentTokenRow),
            {
                "digest": token_digest(token),
                "agent_id": rows[0].id,
                "kind": kind,
                "csrf": csrf,
                "created_at": now,
                "expires_at": now + (SESSION_TTL if kind == "session" else API_TTL),
            },
        )
        await self.seen(rows[0].id)
        return Login(_agent(rows[0]), token, csrf, kind)

    async def authenticate(self, token: str) -> tuple[Agent, str | None, str] | None:
        """(agent, csrf token, kind) for a live token, else None."""
        if not token:
            return None
        digest, now = token_digest(token), time.monotonic()
        cached = self._tokens.get(digest)
        if cached is not None and now - cached[0] < self.CACHE_SECONDS and cached[1][3] > utcnow():
            await self.seen(cached[1][0].id)
            return cached[1][:3]
        # Core rows are flat (no entity attributes): the agent's columns plus the token's, labelled.
        rows = await self._all(
            select(
                AgentRow,
                AgentTokenRow.expires_at.label("token_expires_at"),
                AgentTokenRow.csrf.label("token_csrf"),
                AgentTokenRow.kind.label("token_kind"),
            )
            .join(AgentTokenRow, AgentRow.id == AgentTokenRow.agent_id)
            .where(AgentTokenRow.digest == token_digest(token))
        )
        if not rows or aware(rows[0].token_expires_at) <= utcnow():
            self._tokens.pop(digest, None)
            return None
        found = (_agent(rows[0]), rows[0].token_csrf, rows[0].token_kind, aware(rows[0].token_expires_at))
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[digest] = (now, found)
        await self.seen(found[0].id)
        return found[:3]

    async def logins(self, agent_id: str) -> int:
        """How many logins (console sessions and API tokens) of the agent are live."""
        rows = await self._all(select(AgentTokenRow.expires_at).where(AgentTokenRow.agent_id == agent_id))
        return sum(1 for r in rows if aware(r.expires_at) > utcnow())

    async def logout(self, token: str) -> None:
        self._tokens.pop(token_digest(token), None)
        await self._writer.write(delete(AgentTokenRow).where(AgentTokenRow.digest == token_digest(token)), {})


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _serves(store: AgentStore) -> tuple[Agents, AgentAccounts]:
    return store, store  # for mypy: the SQL store is every protocol it is used through
