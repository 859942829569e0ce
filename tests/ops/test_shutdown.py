"""SIGTERM while a customer's turn is under way: the turn finishes, its reply is committed, exit 0."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sqlite3
import time

import aiohttp
import pytest
import yaml

from tests.ops.running import Running, Visitor, environment

pytestmark = pytest.mark.slow

SLOW_ACTIONS = """
import asyncio, os, pathlib
from rasa_sdk import Action

class Slow(Action):
    def name(self):
        return "action_slow"

    async def run(self, dispatcher, tracker, domain):
        pathlib.Path(os.environ["SLOW_MARK"]).write_text("started")
        await asyncio.sleep(3)  # the turn is under way when the server is told to stop
        dispatcher.utter_message(text="slow answer done")
        return []
"""


def _project(tmp_path, config_dir):
    """The test config with one slow custom action answering a greeting."""
    config = tmp_path / "project" / "config"
    shutil.copytree(config_dir, config)
    rules = yaml.safe_load((config / "rules.yml").read_text(encoding="utf-8"))
    rules["rules"].insert(0, {"name": "slow greeting", "intent": "greet", "then": ["action_slow"]})
    (config / "rules.yml").write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    domain = yaml.safe_load((config / "domain.yml").read_text(encoding="utf-8"))
    domain["actions"] = [*domain.get("actions", []), "action_slow"]
    (config / "domain.yml").write_text(yaml.safe_dump(domain, allow_unicode=True), encoding="utf-8")
    (tmp_path / "project" / "slow_actions.py").write_text(SLOW_ACTIONS)
    return config


async def test_sigterm_lets_the_turn_under_way_finish_and_commit_its_reply(tmp_path, models_dir, config_dir):
    config = _project(tmp_path, config_dir)
    mark = tmp_path / "action-started"
    env = environment(
        tmp_path,
        models_dir,
        config,
        SEAMLINE_ACTIONS_MODULE="slow_actions",
        SEAMLINE_SHUTDOWN_GRACE="20",
        SLOW_MARK=str(mark),
    )
    env["PYTHONPATH"] = str(tmp_path / "project")
    server = Running(["run"], env, tmp_path / "log.jsonl").started()
    try:
        async with aiohttp.ClientSession() as http:
            visitor = await Visitor.open(http, server.url)
            await visitor.say("hello", id="c-1")
            deadline = time.monotonic() + 60
            while not mark.exists():
                assert time.monotonic() < deadline, server.log.read_text()
                await asyncio.sleep(0.05)
            server.process.send_signal(signal.SIGTERM)  # the action is sleeping: the turn is under way
            code = await asyncio.to_thread(server.process.wait, 60)
        assert code == 0, server.log.read_text()
        with sqlite3.connect(tmp_path / "var" / "seamline.db") as db:
            said = [text for (text,) in db.execute("SELECT text FROM messages WHERE role = 'bot'")]
        assert "slow answer done" in said, (said, server.log.read_text())
        assert "Traceback" not in server.log.read_text()
    finally:
        server.close()
