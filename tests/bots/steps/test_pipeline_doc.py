"""docs/pipeline.md tells the truth: its table lists the built-in steps in their order, and its code
blocks run (the module is imported, the TOML is loaded by the app, the code is run on a real
pipeline) and do what the page says."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from seamline.bots.app import build
from seamline.bots.steps import BUILTIN

from tests.bots.steps.walk import Recorder, telegram

DOC = Path(__file__).resolve().parents[3] / "docs" / "pipeline.md"


def blocks() -> list[tuple[str, str, str]]:
    """(how it is checked, language, code) of every fenced block, in order."""
    found = re.findall(r"<!-- test: ([^>]*?) -->\n```(\w+)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return [(how.strip(), language, code) for how, language, code in found]


def block(how: str) -> str:
    [code] = [code for h, _, code in blocks() if h == how]
    return code


@pytest.fixture
def project(tmp_path, monkeypatch, config_dir):
    """The doc's module written into a project folder on sys.path, and a copy of config/."""
    (tmp_path / "crm.py").write_text(block("module crm"), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "crm", raising=False)
    config = tmp_path / "config"
    shutil.copytree(config_dir, config)
    return config


def test_every_code_block_says_how_it_is_checked():
    fences = DOC.read_text(encoding="utf-8").count("```") // 2
    assert len(blocks()) == fences


def test_the_table_lists_the_built_in_steps_in_their_order():
    text = DOC.read_text(encoding="utf-8")
    table = text.split("<!-- test: the names in this table are the built-in steps, in this order -->")[1]
    table = table.split("\n\n")[0]
    assert tuple(re.findall(r"^\| `(\w+)` \|", table, re.M)) == BUILTIN


async def talk(seamline, text: str, sender: str) -> list[str]:
    adapter = Recorder("telegram")
    seamline.pipeline.register(adapter)
    await seamline.pipeline.handle(telegram(text, update_id=1, sender=sender))
    return [reply.text for _, reply in adapter.sent]


async def test_the_config_block_makes_a_vip_reach_people_and_signs_the_answers(settings, understanding, project):
    toml = project / "seamline.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + "\n" + block("config"), encoding="utf-8")
    seamline = await build(replace(settings, config_dir=project), understanding=understanding)
    try:
        assert [s.name for s in seamline.pipeline.steps][1:3] == ["store", "crm"]
        vip = await talk(seamline, "how much is delivery", "777")
        plain = await talk(seamline, "how much is delivery", "100")
    finally:
        await seamline.close()
    assert len(vip) == 2 and len(plain) == 1  # the VIP is also told that a person will answer
    assert vip[-1].endswith("— Shop assistant") and plain[-1].endswith("— Shop assistant")


async def test_the_code_block_adds_the_steps_where_it_says(settings, understanding, project):
    seamline = await build(settings, understanding=understanding)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            exec(block("run with pipeline"), {"pipeline": seamline.pipeline})
        vip = await talk(seamline, "how much is delivery", "777")
    finally:
        await seamline.close()
    names = eval(printed.getvalue())
    assert names[:3] == ["dedupe", "store", "crm"] and names[-1] == "signed"
    assert len(vip) == 2 and vip[-1].endswith("— Shop assistant")
