"""One contract for the agent store (AgentDirectory, AgentLogins, AgentAccounts in handoff/agents.py)
on SQLite and on a real PostgreSQL: who the agents are, their logins, and changing them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from seamline.handoff.agents import AgentStore
from seamline.shared.message import utcnow
from seamline.shared.storage.database import create_engine
from seamline.shared.storage.sql import SqlChatStore

PASSWORD = "correct horse battery"


@pytest.fixture(params=["sqlite", "postgresql"])
async def agents(request):
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    chat = SqlChatStore(engine=create_engine(url))
    yield AgentStore(chat)
    await chat.close()
    await chat.engine.dispose()


class TestAgentDirectoryContract:
    async def test_an_agent_is_found_by_id_and_by_email_whatever_its_case(self, agents):
        added = await agents.add("Anna@Example.com", name="Anna", password=PASSWORD, queues=["billing"])
        assert await agents.get(added.id) == added
        assert await agents.by_email(" anna@example.COM ") == added
        assert added.queues == ("billing",) and added.status == "offline"
        assert await agents.get("nobody") is None and await agents.by_email("nobody@example.com") is None

    async def test_everyone_is_listed_by_name(self, agents):
        for name in ("Zoe", "Anna", "Mark"):
            await agents.add(f"{name.lower()}@example.com", name=name, password=PASSWORD, queues=[])
        assert [a.name for a in await agents.all()] == ["Anna", "Mark", "Zoe"]

    async def test_a_status_is_kept_and_a_wrong_one_refused(self, agents):
        agent = await agents.add("s@example.com", name="S", password=PASSWORD, queues=[])
        await agents.set_status(agent.id, "online")
        assert (await agents.get(agent.id)).status == "online"
        with pytest.raises(ValueError, match="status must be one of"):
            await agents.set_status(agent.id, "asleep")

    async def test_an_agent_online_and_not_seen_since_is_gone(self, agents):
        seen = await agents.add("seen@example.com", name="Seen", password=PASSWORD, queues=[])
        never = await agents.add("never@example.com", name="Never", password=PASSWORD, queues=[])
        offline = await agents.add("off@example.com", name="Off", password=PASSWORD, queues=[])
        for agent in (seen, never):
            await agents.set_status(agent.id, "online")
        await agents.seen(seen.id)
        assert (await agents.get(seen.id)).seen_at is not None
        assert [a.id for a in await agents.gone(utcnow() - timedelta(minutes=1))] == [never.id]
        assert offline.id not in [a.id for a in await agents.gone(utcnow() + timedelta(minutes=1))]


class TestAgentLoginsContract:
    async def test_a_login_gives_a_token_that_authenticates_until_logout(self, agents):
        agent = await agents.add("l@example.com", name="L", password=PASSWORD, queues=[])
        login = await agents.login("L@example.com", PASSWORD)
        found, csrf, kind = await agents.authenticate(login.token)
        assert (found.id, csrf, kind) == (agent.id, login.csrf, "session") and csrf
        assert await agents.logins(agent.id) == 1
        await agents.logout(login.token)
        assert await agents.authenticate(login.token) is None
        assert await agents.logins(agent.id) == 0

    async def test_a_wrong_password_or_email_gives_nothing(self, agents):
        await agents.add("w@example.com", name="W", password=PASSWORD, queues=[])
        assert await agents.login("w@example.com", "wrong horse battery") is None
        assert await agents.login("nobody@example.com", PASSWORD) is None
        assert await agents.authenticate("made-up-token") is None

    async def test_an_api_token_has_no_csrf_token(self, agents):
        await agents.add("api@example.com", name="Api", password=PASSWORD, queues=[])
        login = await agents.login("api@example.com", PASSWORD, kind="api")
        assert (await agents.authenticate(login.token))[1:] == (None, "api")

    async def test_ending_every_login_is_seen_by_another_process_once_it_forgets(self, agents):
        agent = await agents.add("e@example.com", name="E", password=PASSWORD, queues=[])
        tokens = [(await agents.login("e@example.com", PASSWORD)).token for _ in range(2)]
        chat = SqlChatStore(engine=agents.engine)  # another process: its own token cache
        other = AgentStore(chat)
        assert await other.authenticate(tokens[0]) is not None
        await agents.end_logins(agent.id)
        other.forget(agent.id)  # what Inbox.revoke makes every process do
        assert [await other.authenticate(t) for t in tokens] == [None, None]
        await chat.close()


class TestAgentAccountsContract:
    async def test_a_second_agent_with_the_same_email_is_refused(self, agents):
        await agents.add("d@example.com", name="D", password=PASSWORD, queues=[])
        with pytest.raises(ValueError, match="exists already"):
            await agents.add("D@example.com", name="D2", password=PASSWORD, queues=[])

    async def test_a_new_password_ends_every_login(self, agents):
        await agents.add("p@example.com", name="P", password=PASSWORD, queues=[])
        login = await agents.login("p@example.com", PASSWORD)
        changed = await agents.change("p@example.com", password="another long passphrase", capacity=7)
        assert changed.capacity == 7
        assert await agents.authenticate(login.token) is None
        assert await agents.login("p@example.com", "another long passphrase") is not None

    async def test_a_removed_agent_and_their_logins_are_gone(self, agents):
        agent = await agents.add("r@example.com", name="R", password=PASSWORD, queues=[])
        login = await agents.login("r@example.com", PASSWORD)
        assert (await agents.remove("r@example.com")).id == agent.id
        assert await agents.get(agent.id) is None and await agents.authenticate(login.token) is None
        with pytest.raises(LookupError):
            await agents.remove("r@example.com")
