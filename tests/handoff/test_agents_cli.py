"""``seamline agents add | list`` against the database a running Seamline serves: an agent made on
the command line logs in to the console's API. The commands run through ``bots.cli.main`` in a
worker thread (they start their own event loop), plus one run of the real console script."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from seamline.bots.app import SEAMLINE as SEAMLINE_APP
from seamline.bots.cli import main

from tests.conftest import SECRET, settings_in_environment

pytestmark = pytest.mark.slow

SEAMLINE = Path(sys.executable).with_name("seamline")
PASSWORD = "a long enough password"


@pytest.fixture
def env(settings, monkeypatch):
    """The CLI's environment: the server's database."""
    settings_in_environment(monkeypatch, settings)
    return monkeypatch


async def agents(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["agents", *args])
    out, err = capsys.readouterr()
    return code, out, err


async def logs_in(server, email: str, password: str) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/v1/auth/login", json={"email": email, "password": password}) as r:
            return r.status


async def test_an_agent_added_on_the_command_line_logs_in_and_is_listed(server, env, capsys):
    env.setenv("SEAMLINE_AGENT_PASSWORD", PASSWORD)
    code, out, err = await agents(
        capsys, "add", "Olga@Shop.example", "--name", "Olga", "--queues", "support, sales", "--capacity", "3"
    )
    assert code == 0, err
    assert "olga@shop.example" in out and "support, sales" in out and "capacity 3" in out
    assert (await agents(capsys, "list"))[1].rstrip().endswith("seen: never")
    assert await logs_in(server, "olga@shop.example", PASSWORD) == 200
    assert await logs_in(server, "olga@shop.example", "another password") == 401
    code, out, _ = await agents(capsys, "list")
    assert code == 0
    [line] = out.splitlines()
    assert line.split()[:4] == ["olga@shop.example", "Olga", "agent", "offline"]
    assert "capacity 3" in line and "queues: support, sales" in line and line.endswith("seen: just now")


async def test_the_password_can_come_from_stdin(server, env, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    code, out, err = await agents(capsys, "add", "ivan@shop.example", "--name", "Ivan", "--role", "admin")
    assert code == 0, err
    assert "(admin, queues: all, capacity 5) created" in out
    assert await logs_in(server, "ivan@shop.example", PASSWORD) == 200


@pytest.mark.parametrize(
    "args, password, problem",
    [
        (["not-an-email", "--name", "X"], PASSWORD, "is not an e-mail address"),
        (["x@shop.example", "--name", "X"], "short", "at least 10 characters"),
        (["x@shop.example", "--name", "X", "--capacity", "0"], PASSWORD, "capacity must be 1..100"),
    ],
)
async def test_bad_input_is_refused_with_a_reason_and_nothing_made(server, env, capsys, args, password, problem):
    env.setenv("SEAMLINE_AGENT_PASSWORD", password)
    code, out, err = await agents(capsys, "add", *args)
    assert code == 2 and problem in err and out == ""
    assert (await agents(capsys, "list"))[1] == ""


async def test_the_same_email_twice_is_refused(server, env, capsys):
    env.setenv("SEAMLINE_AGENT_PASSWORD", PASSWORD)
    assert (await agents(capsys, "add", "olga@shop.example", "--name", "Olga"))[0] == 0
    code, _, err = await agents(capsys, "add", "OLGA@shop.example", "--name", "Olga again")
    assert code == 2 and "exists already" in err
    assert len((await agents(capsys, "list"))[1].splitlines()) == 1


def test_the_console_script_reads_the_password_from_a_pipe(settings, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMLINE_")}
    env.update(SEAMLINE_DATA_DIR=str(tmp_path), SEAMLINE_DATABASE_URL=settings.database_url, SEAMLINE_SECRET_KEY=SECRET)
    subprocess.run([str(SEAMLINE), "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    done = subprocess.run(
        [str(SEAMLINE), "agents", "add", "anna@shop.example", "--name", "Anna"],
        input=PASSWORD + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    listed = subprocess.run([str(SEAMLINE), "agents", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert "anna@shop.example" in listed.stdout


async def login_token(server, email: str, password: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/v1/auth/login", json={"email": email, "password": password}) as r:
            assert r.status == 200
            return (await r.json())["token"]


async def me(server, token: str) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}) as r:
            return r.status


async def test_an_agent_is_changed_and_a_new_password_logs_them_out(server, env, capsys):
    env.setenv("SEAMLINE_AGENT_PASSWORD", PASSWORD)
    assert (await agents(capsys, "add", "olga@shop.example", "--name", "Olga", "--queues", "support"))[0] == 0
    token = await login_token(server, "olga@shop.example", PASSWORD)
    code, out, err = await agents(
        capsys, "set", "olga@shop.example", "--queues", "support,sales", "--capacity", "2", "--name", "Olga K."
    )
    assert code == 0, err
    assert "queues: support, sales" in out and "capacity 2" in out and "logged out" not in out
    assert await me(server, token) == 200  # still logged in
    [line] = (await agents(capsys, "list"))[1].splitlines()
    assert line.split()[:2] == ["olga@shop.example", "Olga"] and "capacity 2" in line

    env.setenv("SEAMLINE_AGENT_PASSWORD", "a brand new password")
    code, out, err = await agents(capsys, "set", "olga@shop.example", "--password")
    assert code == 0 and "logged out everywhere" in out, err
    server.app[SEAMLINE_APP].handoff.agents.forget()  # the server's token cache (CLI and server share no Redis here)
    assert await me(server, token) == 401
    assert await logs_in(server, "olga@shop.example", PASSWORD) == 401
    assert await logs_in(server, "olga@shop.example", "a brand new password") == 200


@pytest.mark.parametrize(
    "args, problem",
    [
        (["set", "nobody@shop.example", "--capacity", "2"], "no agent nobody@shop.example"),
        (["set", "olga@shop.example"], "nothing to change"),
        (["set", "olga@shop.example", "--capacity", "500"], "capacity must be 1..100"),
        (["remove", "nobody@shop.example"], "no agent nobody@shop.example"),
    ],
)
async def test_changing_or_removing_badly_is_refused_with_a_reason(server, env, capsys, args, problem):
    env.setenv("SEAMLINE_AGENT_PASSWORD", PASSWORD)
    assert (await agents(capsys, "add", "olga@shop.example", "--name", "Olga", "--capacity", "3"))[0] == 0
    code, out, err = await agents(capsys, *args)
    assert code == 2 and problem in err and out == ""
    assert "capacity 3" in (await agents(capsys, "list"))[1]


async def test_a_removed_agent_cannot_log_in_and_what_they_held_goes_back_to_the_queue(server, env, capsys):
    from datetime import timedelta

    from seamline.shared.message import Message

    seamline = server.app[SEAMLINE_APP]
    env.setenv("SEAMLINE_AGENT_PASSWORD", PASSWORD)
    assert (await agents(capsys, "add", "olga@shop.example", "--name", "Olga"))[0] == 0
    token = await login_token(server, "olga@shop.example", PASSWORD)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            server.url + "/api/v1/me/status", json={"status": "online"}, headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status == 200
    handled = await seamline.pipeline.handle(
        Message(channel="web", address="v1", sender="v1", text="I want to talk to a human", external_id="v1-1")
    )
    conversation_id = handled.inbound.conversation_id
    assert (await seamline.handoff.conversation(conversation_id)).state == "with_agent"

    code, out, err = await agents(capsys, "remove", "olga@shop.example")
    assert code == 0 and "removed" in out, err
    assert await logs_in(server, "olga@shop.example", PASSWORD) == 401
    seamline.handoff.agents.forget()
    assert await me(server, token) == 401
    assert (await agents(capsys, "list"))[1] == ""
    await seamline.handoff.set_gone_offline(timedelta(minutes=5))  # the serving process's minute sweep
    info = await seamline.handoff.conversation(conversation_id)
    assert (info.state, info.agent_id) == ("queued", None)


async def test_with_redis_a_new_password_ends_the_servers_logins_at_once(
    make_server, settings, monkeypatch, capsys, request
):
    from dataclasses import replace

    shared = replace(
        settings, database_url=request.getfixturevalue("postgres_url"), redis_url=request.getfixturevalue("redis_url")
    )
    server = await make_server(shared)
    settings_in_environment(monkeypatch, shared)
    monkeypatch.setenv("SEAMLINE_AGENT_PASSWORD", PASSWORD)
    assert (await agents(capsys, "add", "olga@shop.example", "--name", "Olga"))[0] == 0
    token = await login_token(server, "olga@shop.example", PASSWORD)
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(server.url + "/api/v1/inbox") as ws:
            await ws.send_json({"type": "auth", "token": token})
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
            assert await me(server, token) == 200  # checked and cached by the server
            monkeypatch.setenv("SEAMLINE_AGENT_PASSWORD", "a brand new password")
            code, _, err = await agents(capsys, "set", "olga@shop.example", "--password")
            assert code == 0, err
            event = await ws.receive_json(timeout=5)
            assert event["type"] == "error" and "log in again" in event["error"]
    assert await me(server, token) == 401  # without waiting for the server's token cache
