"""``seamline customers show | links | unlink | export | erase`` on data the pipeline wrote.

The data is made by running the pipeline in-process; the commands run through ``bots.cli.main``
in a worker thread (they start their own event loop), plus one run of the real console script.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from seamline.bots.app import build
from seamline.bots.cli import main
from seamline.shared.message import Message

from tests.conftest import settings_in_environment
from tests.support import Recorder

pytestmark = pytest.mark.slow

SEAMLINE = Path(sys.executable).with_name("seamline")


_ids = iter(range(50_000, 10**9))


def say(channel: str, sender: str, text: str, payload: str | None = None) -> Message:
    return Message(
        channel=channel, address=sender, sender=sender, text=text, payload=payload, external_id=str(next(_ids))
    )


@pytest.fixture(params=["sqlite"])
def backend(request, settings, monkeypatch):
    """Settings for the in-process pipeline, and the same database (and Redis) in the CLI's environment."""
    if request.param == "postgres+redis":
        settings = replace(
            settings,
            database_url=request.getfixturevalue("postgres_url"),
            redis_url=request.getfixturevalue("redis_url"),
        )
    settings_in_environment(monkeypatch, settings)
    return settings


@pytest.fixture
async def seamline(backend, understanding):
    seamline = await build(backend, understanding=understanding)
    seamline.adapters = {c: Recorder(c) for c in ("telegram", "web", "vk")}
    for adapter in seamline.adapters.values():
        seamline.pipeline.register(adapter)
    yield seamline
    await seamline.close()


async def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["customers", *args])
    out, err = capsys.readouterr()
    return code, out, err


def customer_id(show_output: str) -> str:
    return re.search(r"^customer (\w+)$", show_output, re.MULTILINE).group(1)


async def chat(seamline, channel: str, sender: str, *texts: str) -> str:
    for text in texts:
        await seamline.pipeline.handle(say(channel, sender, text))
    return (await seamline.store.find_customer(channel, sender)).id


async def test_show_by_identity_and_by_id(seamline, capsys):
    ivan = await chat(seamline, "telegram", "501", "hello", "where is my order")
    await seamline.customers.set_attributes(
        ivan, {"email": "ivan@example.com", "name": "Иван"}, source="agent", verified=True
    )
    messages = len(await seamline.store.history(ivan))

    code, out, err = await cli(capsys, "show", "telegram:501")

    assert code == 0, err
    assert customer_id(out) == ivan
    assert "name:         Иван" in out and "last channel: telegram" in out
    assert 'email: "ivan@example.com"  (agent, verified' in out
    assert "telegram:501  reachable" in out
    assert f"messages: {messages}" in out and messages >= 4
    assert "links (0):" in out
    code, by_id, _ = await cli(capsys, "show", ivan)
    assert code == 0 and by_id == out


async def test_export_holds_the_customers_messages_and_identities_and_nothing_of_another(seamline, capsys, tmp_path):
    anna = await chat(seamline, "telegram", "601", "где мой заказ", "55123")
    other = await chat(seamline, "vk", "602", "my email is petr@example.com")

    code, out, err = await cli(capsys, "export", "telegram:601")

    assert code == 0, err
    assert "где мой заказ" in out  # UTF-8 as it is, not \u escapes
    data = json.loads(out)
    assert data["customer"]["id"] == anna
    assert data["identities"] == [{"channel": "telegram", "external_id": "601", "reachable": True}]
    texts = [m["text"] for m in data["messages"] if m["direction"] == "in"]
    assert texts == ["где мой заказ", "55123"]
    assert (
        other not in out and "petr@example.com" not in out and '"602"' not in out
    )  # as a JSON value: the digits may occur inside a random id

    target = tmp_path / "anna.json"
    code, out, err = await cli(capsys, "export", "telegram:601", "--output", str(target))
    assert code == 0, err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert json.loads(target.read_text(encoding="utf-8")) == data
    assert str(target) in out


async def test_erase_without_yes_refuses_and_changes_nothing(seamline, capsys):
    await chat(seamline, "telegram", "701", "my phone is +7 916 123-45-67")
    _, before, _ = await cli(capsys, "export", "telegram:701")

    code, _, err = await cli(capsys, "erase", "telegram:701")

    assert code == 2
    assert "--yes" in err and re.search(r"would delete \d+ messages, 1 identity,", err)
    assert "Traceback" not in err
    _, after, _ = await cli(capsys, "export", "telegram:701")
    assert after == before


async def test_erase_removes_the_messages_and_leaves_another_customer_intact(seamline, capsys):
    gone = await chat(seamline, "telegram", "801", "my email is ivan@example.com")
    kept = await chat(seamline, "telegram", "802", "hello there")
    _, kept_before, _ = await cli(capsys, "export", kept)

    code, out, err = await cli(capsys, "erase", "telegram:801", "--yes", "--by", "dpo@test")

    assert code == 0, err
    assert f"erased customer {gone}" in out and "kept anonymously" in out
    code, exported, _ = await cli(capsys, "export", gone)  # by id: the identity is gone
    data = json.loads(exported)
    assert code == 0 and data["messages"] == [] and data["identities"] == []
    assert "ivan@example.com" not in exported and all(not e["data"] or "by" in e["data"] for e in data["events"])
    assert (await cli(capsys, "show", "telegram:801"))[0] == 1
    _, kept_after, _ = await cli(capsys, "export", kept)
    assert kept_after == kept_before


@pytest.mark.parametrize("backend", ["sqlite", "postgres+redis"], indirect=True)
async def test_unlink_by_id_makes_two_customers_again(seamline, capsys):
    telegram = await chat(seamline, "telegram", "901", "hello")
    web = await chat(seamline, "web", "visitor-901", "where is my order")
    await seamline.pipeline.handle(say("telegram", "901", "Website chat", "/link_account web"))
    code = re.search(r"\b(\d{6})\b", seamline.adapters["telegram"].sent[-1][1].text).group(1)
    await seamline.pipeline.handle(say("web", "visitor-901", code))
    yes = seamline.adapters["telegram"].sent[-1][1].buttons[0]  # "Someone in the website chat wants ..."
    await seamline.pipeline.handle(say("telegram", "901", yes.title, yes.payload))
    assert (await seamline.store.fresh_customer("web", "visitor-901")).id == telegram

    status, out, err = await cli(capsys, "links", "web:visitor-901")
    assert status == 0, err
    [line] = out.splitlines()
    link_id = line.split()[0]
    assert f"took in {web}" in line and "code" in line and "UNDONE" not in line
    _, shown, _ = await cli(capsys, "show", "web:visitor-901")
    assert customer_id(shown) == telegram and "web:visitor-901" in shown and link_id in shown
    status, _, err = await cli(capsys, "erase", web, "--yes")  # the merged one holds nothing of its own now
    assert status == 1 and f"linked into {telegram}" in err

    status, out, err = await cli(capsys, "unlink", link_id, "--by", "admin@test")

    assert status == 0, err
    assert f"link {link_id} undone by admin@test" in out
    assert re.search(rf"^kept\s+{telegram}\s+telegram:901$", out, re.MULTILINE), out
    assert re.search(rf"^restored\s+{web}\s+web:visitor-901$", out, re.MULTILINE), out
    # without Redis a running server holds sessions this command cannot reach: it says to restart it
    assert ("restart a running 'seamline run'" in err) == (not seamline.settings.redis_url)
    _, web_shown, _ = await cli(capsys, "show", "web:visitor-901")
    _, telegram_shown, _ = await cli(capsys, "show", "telegram:901")
    assert customer_id(web_shown) == web != customer_id(telegram_shown) == telegram
    assert "UNDONE" in web_shown
    status, _, err = await cli(capsys, "unlink", link_id)
    assert status == 1 and "already undone" in err
    # the running pipeline sees two customers again
    await seamline.pipeline.handle(say("web", "visitor-901", "hello again"))
    assert "hello again" in [m.text for m in await seamline.store.history(web)]


@pytest.mark.parametrize(
    "args",
    [
        ["show", "telegram:404"],
        ["show", "0000nobody"],
        ["links", "vk:404"],
        ["export", "web:nobody"],
        ["erase", "telegram:404", "--yes"],
        ["unlink", "no-such-link"],
    ],
)
async def test_an_unknown_customer_or_link_exits_1_with_one_clear_line(seamline, capsys, args):
    code, out, err = await cli(capsys, *args)
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("seamline:")]
    assert len(lines) == 1 and re.search(r"no (customer|link)", lines[0]), err
    assert "Traceback" not in err and out == ""


async def test_the_console_script_shows_a_customer(seamline, tmp_path):
    customer = await chat(seamline, "vk", "1001", "hello")
    done = await asyncio.to_thread(
        subprocess.run,
        [str(SEAMLINE), "customers", "show", "vk:1001"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert customer_id(done.stdout) == customer and "vk:1001  reachable" in done.stdout
    assert "Traceback" not in done.stderr
