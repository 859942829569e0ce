"""Every store is used through a protocol (shared/history.py, shared/identity.py, shared/session.py,
shared/limits.py, shared/storage/inbox.py, handoff/agents.py, handoff/inbox.py, handoff/storage.py,
bots/dialogue/reminders.py);
each implementation must match its protocol exactly, method by method, so a caller typed against the
protocol can be handed any backend. mypy checks the same in CI; this test names the method that drifted, without mypy."""

from __future__ import annotations

import inspect
from typing import Protocol

import pytest

from seamline.bots.dialogue.reminders import Reminders, SqlReminders
from seamline.handoff.agents import AgentAccounts, Agents, AgentStore
from seamline.handoff.inbox import ConsoleInbox, Inbox, RedisInbox
from seamline.handoff.storage import ConversationRows, SqlConversationRows
from seamline.shared.history import ChatStore
from seamline.shared.identity import CustomerStore
from seamline.shared.limits import Limiter, MemoryLimiter, RedisLimiter
from seamline.shared.session import MemorySessionStore, SessionStore
from seamline.shared.storage.customers import SqlCustomerStore
from seamline.shared.storage.inbox import DurableInbox, SqlInbox
from seamline.shared.storage.redis_sessions import RedisSessionStore
from seamline.shared.storage.sql import SqlChatStore

SEAMS = [
    (ChatStore, SqlChatStore),
    (SessionStore, MemorySessionStore),
    (SessionStore, RedisSessionStore),
    (CustomerStore, SqlCustomerStore),
    (Agents, AgentStore),
    (AgentAccounts, AgentStore),
    (ConsoleInbox, Inbox),
    (ConsoleInbox, RedisInbox),
    (ConversationRows, SqlConversationRows),
    (Limiter, MemoryLimiter),
    (Limiter, RedisLimiter),
    (DurableInbox, SqlInbox),
    (Reminders, SqlReminders),
]


def members(protocol: type) -> dict[str, object]:
    """The methods a protocol declares, its protocol bases' included."""
    found: dict[str, object] = {}
    for base in reversed(protocol.__mro__):
        if base in (object, Protocol) or not getattr(base, "_is_protocol", False):
            continue
        found.update(
            {name: value for name, value in vars(base).items() if callable(value) and not name.startswith("_")}
        )
    return found


def shape(function: object) -> tuple[bool, list[tuple[str, object, object, object]], object]:
    signature = inspect.signature(function)  # type: ignore[arg-type]
    return (
        inspect.iscoroutinefunction(function),
        [(p.name, p.kind, p.default, p.annotation) for p in signature.parameters.values()],
        signature.return_annotation,
    )


@pytest.mark.parametrize(("protocol", "implementation"), SEAMS, ids=[f"{p.__name__}-{i.__name__}" for p, i in SEAMS])
def test_the_implementation_matches_its_protocol_method_by_method(protocol, implementation):
    declared = members(protocol)
    assert declared, f"{protocol.__name__} declares no methods"
    for name, method in declared.items():
        assert hasattr(implementation, name), f"{implementation.__name__} has no {name} of {protocol.__name__}"
        mine, theirs = shape(getattr(implementation, name)), shape(method)
        if name == "lock":  # under @asynccontextmanager it is written as a generator; called the same way
            mine, theirs = mine[1], theirs[1]
        assert mine == theirs, f"{implementation.__name__}.{name} differs from {protocol.__name__}.{name}"
