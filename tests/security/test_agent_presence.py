"""An agent who logged out, or whose console closed a while ago, is given no customer, and no
customer is told "<name> is with you now" when nobody is there (docs/handoff.md, "Presence")."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from seamline.shared.message import utcnow
from seamline.shared.storage.models import AgentRow

from tests.handoff.test_api import escalated


async def _state(seamline, conversation: str) -> tuple[str, str | None]:
    info = await seamline.handoff.conversation(conversation)
    return info.state, info.agent_id


async def _seen_long_ago(seamline, agent_id: str) -> None:
    long_ago = utcnow() - seamline.handoff.presence_grace - timedelta(seconds=1)
    async with seamline.store.engine.begin() as conn:
        await conn.execute(update(AgentRow).where(AgentRow.id == agent_id).values(seen_at=long_ago))
    seamline.handoff.agents._seen.clear()  # the next request writes "seen" again at once


async def test_a_logged_out_agent_gets_no_customer_and_the_customer_is_told_they_wait(seamline, telegram, agent):
    api = await agent(status="online")
    await api.post("/auth/logout")
    conversation = await escalated(seamline, "7001")
    assert await _state(seamline, conversation) == ("queued", None)
    told = telegram.texts("7001")[-1]
    assert "in the queue" in told and "with you now" not in told
    assert (await seamline.handoff.agents.get(api.agent.id)).status == "offline"


async def test_logging_out_gives_back_what_the_agent_held(seamline, telegram, agent):
    api = await agent(status="online")
    conversation = await escalated(seamline, "7002")
    assert await _state(seamline, conversation) == ("with_agent", api.agent.id)
    await api.post("/auth/logout")
    assert await _state(seamline, conversation) == ("queued", None)
    assert "with you now" not in telegram.texts("7002")[-1]


async def test_an_agent_with_another_login_left_stays_online(seamline, telegram, agent, http, server):
    api = await agent(status="online")
    async with http.post(
        server.url + "/api/v1/auth/login",
        json={"email": api.agent.email, "password": "correct horse battery", "kind": "api"},
    ) as r:
        assert r.status == 200
    await api.post("/auth/logout")  # one of two logins ends
    conversation = await escalated(seamline, "7003")
    assert await _state(seamline, conversation) == ("with_agent", api.agent.id)


async def test_after_the_console_closed_for_the_grace_period_no_customer_is_given(
    seamline, telegram, agent, http, server
):
    api = await agent(status="online")
    async with http.ws_connect(server.url + "/api/v1/inbox") as ws:
        await ws.send_json({"type": "auth", "token": api.token})
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        await _seen_long_ago(seamline, api.agent.id)
        open_console = await escalated(seamline, "7004")  # an open console: here, whatever seen_at says
        assert await _state(seamline, open_console) == ("with_agent", api.agent.id)
    await _seen_long_ago(seamline, api.agent.id)  # the console closed longer ago than the grace period
    conversation = await escalated(seamline, "7005")
    assert await _state(seamline, conversation) == ("queued", None)
    told = telegram.texts("7005")[-1]
    assert "in the queue" in told and "with you now" not in told
    await api.get("/me")  # the agent comes back (any API use): the next customer is theirs again
    conversation = await escalated(seamline, "7006")
    assert await _state(seamline, conversation) == ("with_agent", api.agent.id)


async def test_the_agents_list_says_who_is_not_here(seamline, agent, server, monkeypatch, capsys):
    import asyncio

    from seamline.bots.cli import main

    from tests.conftest import settings_in_environment

    here, gone = await agent(status="online"), await agent(status="online")
    await _seen_long_ago(seamline, gone.agent.id)
    listed = {a["email"]: a["connected"] for a in (await here.get("/agents"))["agents"]}
    assert listed == {here.agent.email: True, gone.agent.email: False}
    settings_in_environment(monkeypatch, server.settings)
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["agents", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "online, not here" in lines[gone.agent.email]
    assert "not here" not in lines[here.agent.email]
