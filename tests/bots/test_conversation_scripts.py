"""``seamline test``: conversation scripts through the real bot (bots/conversations.py).

The retail template's own suite runs here (so CI runs it), each conversation as a test; then scripts
of our own, passing and failing, on the minimal template: what a bot author reads when one fails
(the expected and the actual turns), the exit status and the JUnit file a CI system reads.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from seamline.bots import cli
from seamline.bots.conversations import load
from seamline.bots.project import TEMPLATES_DIR
from seamline.testing import Bot, conversations

RETAIL_SUITE = sorted((TEMPLATES_DIR / "retail" / "conversations").glob("*.yml"))
RETAIL = [c for file in RETAIL_SUITE for c in load(file)]


@pytest.fixture(autouse=True)
def no_seamline_environment(monkeypatch):
    for name in [n for n in os.environ if n.startswith("SEAMLINE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "path", list(sys.path))


def project(tmp_path_factory, template: str, models: Path | None = None) -> Path:
    """A project as `seamline init` writes it; with ``models``, its model is the one trained on the
    shipped data (the retail template's intents are that data), so no test trains it again."""
    path = tmp_path_factory.mktemp(template) / "bot"
    assert cli.main(["init", str(path), "--template", template]) == 0
    if models is not None:
        shutil.copytree(models, path / "var" / "models")
    return path


@pytest.fixture(scope="module")
def shop(tmp_path_factory, models_dir):
    path = project(tmp_path_factory, "retail", models_dir)
    saved = list(sys.path)
    with Bot(path) as bot:
        yield bot
    sys.path[:] = saved


@pytest.fixture(scope="module")
def minimal(tmp_path_factory) -> Path:
    path = project(tmp_path_factory, "minimal")
    assert cli.main(["nlu", "train", "--project", str(path)]) == 0
    return path


# -- the retail template's suite ------------------------------------------------------------------


def test_the_retail_suite_is_copied_by_init_in_the_languages_chosen(tmp_path):
    assert cli.main(["init", str(tmp_path / "shop"), "--template", "retail", "--language", "ru"]) == 0
    assert sorted(p.name for p in (tmp_path / "shop" / "tests" / "conversations").iterdir()) == ["ru.yml"]
    names = [c.name for c in conversations(tmp_path / "shop")]
    assert "an unknown order goes to a person (ru)" in names and not any("(en)" in n for n in names)


@pytest.mark.parametrize("conversation", RETAIL, ids=[c.name for c in RETAIL])
def test_the_retail_suite(shop, conversation):
    result = shop.play(conversation)
    assert result.passed, result.report()


# -- scripts of our own ---------------------------------------------------------------------------


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


PASSING = """
conversations:
  - name: a greeting, then thanks on Telegram
    language: en
    steps:
      - user: hello
        intent: greet
      - bot: greet
      - switch_channel: telegram
      - user: thank you so much
        intent: thanks
      - bot: thanks
      - handoff: bot
  - name: a person answers
    language: en
    steps:
      - user: i want to talk to a person
        channel: telegram
      - bot: human_agent
      - handoff: queued
      - agent: "Hello, I'm Anna"
      - bot: "Hello, I'm Anna"
      - handoff: with_agent
  - name: the older steps still work
    language: ru
    steps:
      - {say: "привет", intent: greet, answer: greet}
"""

FAILING = """
conversations:
  - name: greeted with goodbye
    language: en
    steps:
      - user: hello
        intent: goodbye
      - bot: goodbye
      - slot: {order_number: "123"}
  - name: fine
    language: en
    steps:
      - user: hello
      - bot: greet
"""


def test_passing_scripts_exit_0_and_write_junit(minimal, tmp_path, capsys):
    script = write(tmp_path / "scripts", "mine.yml", PASSING)
    report = tmp_path / "junit.xml"
    assert cli.main(["test", str(script), "--project", str(minimal), "--junit-xml", str(report)]) == 0
    out = capsys.readouterr().out
    assert "3 passed, 0 failed" in out and "PASS a person answers" in out
    suite = ET.parse(report).getroot()
    assert suite.tag == "testsuite" and suite.get("tests") == "3" and suite.get("failures") == "0"
    assert [case.get("name") for case in suite] == [
        "a greeting, then thanks on Telegram",
        "a person answers",
        "the older steps still work",
    ]
    assert not suite.findall("testcase/failure")


def test_a_failing_script_shows_expected_and_actual_turns(minimal, tmp_path, capsys):
    folder = tmp_path / "scripts"
    write(folder, "failing.yml", FAILING)
    report = tmp_path / "junit.xml"
    assert cli.main(["test", str(folder), "--project", str(minimal), "--junit-xml", str(report)]) == 1
    out = capsys.readouterr().out
    assert "1 passed, 1 failed" in out and "PASS fine" in out
    failed = out[out.index("FAIL greeted with goodbye") : out.index("PASS fine")]
    assert "user (web): hello" in failed and "understood: greet" in failed  # the actual turn
    assert "FAIL  intent: goodbye" in failed and "got: greet (" in failed
    assert "FAIL  bot: goodbye" in failed and "(greet)" in failed  # the reply and which response it is
    assert "FAIL  slot: order_number = '123'" in failed and "got: None" in failed
    suite = ET.parse(report).getroot()
    assert suite.get("failures") == "1"
    (failure,) = suite.findall("testcase/failure")
    assert failure.get("message").startswith("intent: goodbye — got: greet")
    assert "FAIL  bot: goodbye" in failure.text


def test_the_projects_scripts_run_by_default_and_under_pytest(minimal, capsys):
    assert cli.main(["test", "--project", str(minimal)]) == 0  # tests/conversations.yml of the template
    assert "6 passed, 0 failed" in capsys.readouterr().out
    with Bot(minimal) as bot:
        for conversation in conversations(minimal):
            assert bot.play(conversation).passed


def test_an_agent_cannot_answer_a_conversation_nobody_handed_over(minimal, tmp_path, capsys):
    script = write(
        tmp_path,
        "agent.yml",
        "conversations:\n  - name: too early\n    steps:\n      - user: hello\n      - agent: hi, Anna here\n",
    )
    assert cli.main(["test", str(script), "--project", str(minimal)]) == 1
    assert "the agent could not take the conversation" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text, message",
    [
        ("steps: []\n", "has no `conversations:` list"),
        ("conversations:\n  - name: x\n", "conversation 1 has no `steps:` list"),
        ("conversations:\n  - name: x\n    steps:\n      - usr: hello\n", "conversation 'x', step 1: .* is not a step"),
        ("conversations: [\n", "is not valid YAML"),
        ("conversations:\n  - name: x\n    steps:\n      - handoff: human\n", "handoff 'human' is not a state"),
    ],
)
def test_a_malformed_script_is_a_configuration_error_naming_it(minimal, tmp_path, capsys, text, message):
    script = write(tmp_path, "bad.yml", text)
    assert cli.main(["test", str(script), "--project", str(minimal)]) == 2
    err = capsys.readouterr().err
    assert str(script) in err
    assert re.search(message, err), err


BROKEN_ACTION = """
from rasa_sdk import Action


class Boom(Action):
    def name(self):
        return "action_boom"

    def run(self, dispatcher, tracker, domain):
        raise RuntimeError("the order system is down")
"""


def test_a_failing_action_is_shown_in_the_report(tmp_path_factory, tmp_path, capsys):
    bot = project(tmp_path_factory, "minimal")
    (bot / "actions" / "__init__.py").write_text(BROKEN_ACTION, encoding="utf-8")
    (bot / "config" / "domain.yml").write_text("actions: [action_boom]\n", encoding="utf-8")
    (bot / "config" / "rules.yml").write_text("rules:\n  - {name: boom, intent: greet, then: [action_boom]}\n")
    script = write(
        tmp_path, "boom.yml", "conversations:\n  - name: boom\n    steps:\n      - user: hello\n      - bot: greet\n"
    )
    assert cli.main(["test", str(script), "--project", str(bot)]) == 1
    out = capsys.readouterr().out
    assert "actions: ['action_boom']" in out and "(action_failed)" in out
    assert "problem: action_boom: " in out and "RuntimeError: the order system is down" in out
