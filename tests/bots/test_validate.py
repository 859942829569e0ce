"""``seamline data validate``: mistakes seeded into a fresh minimal project, each named once with its
file and its fix; errors (and, with --strict, warnings) fail the command. ``nlu train`` warns alike."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from seamline.bots import cli
from seamline.bots.dialogue.model import Condition, Domain, Form, Rule, RuleStep, Slot
from seamline.bots.dialogue.responses import Responses
from seamline.bots.validate import check
from seamline.nlu.data import Example, TrainingData


@pytest.fixture(autouse=True)
def no_seamline_environment(monkeypatch):
    for name in [n for n in os.environ if n.startswith("SEAMLINE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def bot(tmp_path) -> Path:
    assert cli.main(["init", str(tmp_path / "bot"), "--language", "en"]) == 0
    return tmp_path / "bot"


def validate(bot: Path, capsys, *options: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    status = cli.main(["data", "validate", "--project", str(bot), *options])
    return status, capsys.readouterr().out.splitlines()


def intents(bot: Path, text: str) -> None:
    (bot / "config/intents/more.en.yml").write_text(f"language: en\nintents:\n  {text}\n", encoding="utf-8")


def add(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def test_a_fresh_project_is_clean(bot, capsys):
    assert validate(bot, capsys) == (0, [])
    assert validate(bot, capsys, "--strict") == (0, [])


def test_a_text_under_two_intents_is_a_warning_naming_both_refused_with_strict(bot, capsys):
    intents(bot, 'order_status:\n    examples: ["hello", "where is my order"]')
    status, lines = validate(bot, capsys)
    clash = [line for line in lines if "'hello'" in line]
    assert status == 0 and clash == [
        "warning: config/intents/more.en.yml: the example 'hello' is under 'order_status' and under 'greet' in "
        "minimal.en.yml; "
        "it is kept under neither — keep it under the one intent it means, or reword one of them"
    ]
    assert validate(bot, capsys, "--strict")[0] == 1
    capsys.readouterr()
    assert cli.main(["nlu", "train", "--project", str(bot)]) == 0  # trains, and says the same
    assert clash[0] in capsys.readouterr().err


def test_a_text_the_framework_says_missing_in_a_language_is_named(bot, capsys):
    responses = bot / "config/responses/en.yml"
    text = responses.read_text(encoding="utf-8")
    without = re.sub(r"(?m)^  action_failed:\n(?:(?:    |  -).*\n)*", "", text)  # the key and its variants
    assert without != text
    responses.write_text(without, encoding="utf-8")
    status, lines = validate(bot, capsys)
    assert status == 0 and [line for line in lines if "action_failed" in line] == [
        "warning: config/responses/en.yml: en has no response 'action_failed', which Seamline says itself; "
        "customers get an English default — add 'action_failed' (see the same key in `seamline init`'s templates)"
    ]


def test_an_intent_with_few_examples_and_no_answer_is_named(bot, capsys):
    intents(bot, 'opening_hours:\n    examples: ["when are you open", "hours"]')
    status, lines = validate(bot, capsys)
    assert status == 0
    assert (
        "warning: config/intents: intent 'opening_hours' has 2 examples in en — add at least 10, "
        "worded as customers write" in lines
    )
    assert any(
        line.startswith("warning: config/responses/en.yml: intent 'opening_hours' has no response and no rule in en")
        for line in lines
    )


DOMAIN = """
slots:
  email:
    type: text
  size:
    type: categorical
    values: [s, m, l]
    mappings: [{type: from_entity, entity: size}]
forms:
  size_form:
    required_slots: [size]
    submit: [thanks]
actions: [action_never_used]
"""

RULES = """
rules:
  - name: hello to a form
    intent: greet
    then: [{form: size_form}]
  - name: hello twice
    intent: greet
    then: [goodbye]
  - name: a typo
    intent: thanks
    then: [thanks_typo]
"""


def test_seeded_mistakes_in_domain_and_rules(bot, capsys):
    (bot / "config/domain.yml").write_text(DOMAIN, encoding="utf-8")
    (bot / "config/rules.yml").write_text(RULES, encoding="utf-8")
    add(bot / "config/responses/en.yml", '  never_said:\n    - text: "Nobody says me"\n')
    status, lines = validate(bot, capsys)
    assert status == 1
    text = "\n".join(lines)
    assert (
        "error: config/rules.yml: rule 'hello twice' contradicts rule 'hello to a form' (same intent and "
        "conditions, other steps); the first one wins, this one never runs" in text
    )
    assert (
        "error: config/rules.yml: rule 'a typo' runs action 'thanks_typo', which domain.yml does not declare "
        "and no response or form has that name" in text
    )
    assert "warning: config/domain.yml: slot 'email' has no mapping" in text
    assert "error: config/domain.yml: form 'size_form' cannot ask for 'size' in en: no response" in text
    assert "add 'ask_size' to config/responses/en.yml" in text
    assert "warning: config/responses/en.yml: response 'never_said' is never said" in text
    assert "warning: config/domain.yml: action 'action_never_used' is declared and nothing runs it" in text
    assert "size" not in " ".join(line for line in lines if "has no mapping" in line)  # a form's slot is asked
    assert all(line.startswith(("error: ", "warning: ")) and " — " in line for line in lines)


def test_a_domain_the_bot_would_refuse_is_one_error(bot, capsys):
    (bot / "config/rules.yml").write_text("rules:\n  - name: x\n    intent: greet\n    then: [{form: nope}]\n")
    status, lines = validate(bot, capsys)
    assert status == 1
    assert lines == [
        "error: config/rules.yml rule 'x': starts form 'nope', which domain.yml lacks — "
        "Add the form to config/domain.yml or fix the name"
    ]


def test_rules_under_other_conditions_do_not_contradict():
    responses = Responses({"en": {"greet": [{"text": "hi"}], "ask_size": [{"text": "size?"}]}})
    rules = (
        Rule("plain", (RuleStep("response", "greet"),), intent="greet"),
        Rule("on telegram", (RuleStep("form", "f"),), intent="greet", when=Condition(channels=("telegram",))),
        Rule("same again", (RuleStep("response", "greet"),), intent="greet"),
    )
    domain = Domain(
        responses=responses,
        slots={"size": Slot("size", "text")},
        forms={"f": Form("f", ("size",))},
        rules=rules,
    )
    data = TrainingData([Example(f"hi {n}", "greet", "en") for n in range(10)])
    findings = check(domain, data, responses={"en": ("config/responses/en.yml", {"greet", "ask_size"})})
    assert [(f.level, f.what.split(" (")[0]) for f in findings] == [
        ("warning", "rule 'same again' repeats rule 'plain'")
    ]


def test_the_retail_template_is_clean_its_actions_saying_the_order_responses(tmp_path, capsys):
    assert cli.main(["init", str(tmp_path / "shop"), "--template", "retail"]) == 0
    assert validate(tmp_path / "shop", capsys, "--strict") == (0, [])
    (tmp_path / "shop/actions/order_status.py").unlink()  # nothing says order_in_transit & co. now
    (tmp_path / "shop/actions/__init__.py").write_text("")
    status, lines = validate(tmp_path / "shop", capsys)
    assert status == 0 and any("response 'order_in_transit' is never said" in line for line in lines)


RASA_INIT = Path(__file__).resolve().parent.parent / "fixtures" / "rasa" / "init"


def test_a_rasa_project_is_checked_as_run_rasa_project_reads_it(tmp_path, capsys):
    assert cli.main(["data", "validate", "--rasa-project", str(RASA_INIT)]) == 0
    capsys.readouterr()
    project = tmp_path / "rasa"
    shutil.copytree(RASA_INIT, project)
    rules = (project / "data/rules.yml").read_text(encoding="utf-8")
    add(project / "data/rules.yml", "\n- rule: Greet twice\n  steps:\n  - intent: greet\n  - action: utter_goodbye\n")
    assert cli.main(["data", "validate", "--rasa-project", str(project)]) == 1
    out = capsys.readouterr().out
    assert "error: data/rules.yml: rule 'Greet twice' contradicts rule 'Greet back'" in out
    (project / "data/rules.yml").write_text(rules.replace("action: utter_greet\n", "action: utter_greett\n"))
    assert cli.main(["data", "validate", "--rasa-project", str(project)]) == 1
    assert "error: data/rules.yml rule 'Greet back': says 'utter_greett'" in capsys.readouterr().out
