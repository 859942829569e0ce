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

from bots.cli import main
from tests.conftest import SECRET, settings_in_environment

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
    code, out, err = await agents(capsys, "add", "Olga@Shop.example", "--name", "Olga", "--queues",
                                  "support, sales", "--capacity", "3")
    assert code == 0, err
    assert "olga@shop.example" in out and "support, sales" in out and "capacity 3" in out
    assert await logs_in(server, "olga@shop.example", PASSWORD) == 200
    assert await logs_in(server, "olga@shop.example", "another password") == 401
    code, out, _ = await agents(capsys, "list")
    assert code == 0
    [line] = out.splitlines()
    assert line.split()[:4] == ["olga@shop.example", "Olga", "agent", "offline"]
    assert "capacity 3" in line and "queues: support, sales" in line


async def test_the_password_can_come_from_stdin(server, env, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    code, out, err = await agents(capsys, "add", "ivan@shop.example", "--name", "Ivan", "--role", "admin")
    assert code == 0, err
    assert "(admin, queues: all, capacity 5) created" in out
    assert await logs_in(server, "ivan@shop.example", PASSWORD) == 200


@pytest.mark.parametrize("args, password, problem", [
    (["not-an-email", "--name", "X"], PASSWORD, "is not an e-mail address"),
    (["x@shop.example", "--name", "X"], "short", "at least 10 characters"),
    (["x@shop.example", "--name", "X", "--capacity", "0"], PASSWORD, "capacity must be 1..100"),
])
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
    env.update(SEAMLINE_DATA_DIR=str(tmp_path), SEAMLINE_DATABASE_URL=settings.database_url,
               SEAMLINE_SECRET_KEY=SECRET)
    subprocess.run([str(SEAMLINE), "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    done = subprocess.run([str(SEAMLINE), "agents", "add", "anna@shop.example", "--name", "Anna"],
                          input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run([str(SEAMLINE), "agents", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert "anna@shop.example" in listed.stdout
