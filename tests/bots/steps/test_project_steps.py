"""A bot project adds its own steps without editing Seamline: in config/seamline.toml
(``[pipeline] steps``, loaded by import path) or with ``Pipeline.add_step``."""

from __future__ import annotations

import shutil
import sys
import textwrap
from dataclasses import replace

import pytest

from seamline.bots.app import build
from seamline.bots.steps.load import configured_steps
from seamline.shared.errors import ConfigError

from tests.bots.steps.walk import Recorder, telegram

MODULE = '''
from seamline import Reply

RUDE = {"idiot", "stupid"}


class ProfanityFilter:
    """Answers rudeness itself; the dialogue never sees it."""
    name = "profanity"

    async def __call__(self, turn, call_next):
        if RUDE & set(turn.message.text.lower().split()):
            turn.answer(Reply("Let's keep it polite, please."), intent="rude")
            return
        await call_next(turn)


class CrmLookup:
    """What the shop's CRM knows about the customer, on their profile before anything is decided."""
    name = "crm"

    def __init__(self, vip_senders=()):
        self.vip_senders = set(vip_senders)

    async def __call__(self, turn, call_next):
        if turn.message.sender in self.vip_senders:
            turn.session.attributes["vip"] = True
        await call_next(turn)


async def shout(turn, call_next):
    await call_next(turn)
    turn.replies[:] = [Reply(r.text.upper(), r.buttons, r.role) for r in turn.replies]


NOT_A_STEP = 42
'''


@pytest.fixture
def project(tmp_path, monkeypatch, config_dir):
    """A bot project folder on sys.path (as `seamline run` puts it) with its own module and config/."""
    (tmp_path / "my_bot_steps.py").write_text(MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_bot_steps", raising=False)
    config = tmp_path / "project-config"
    shutil.copytree(config_dir, config)
    return config


def with_steps(config, toml: str):
    path = config / "seamline.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n" + textwrap.dedent(toml), encoding="utf-8")
    return config


async def answers(settings, understanding, config, *texts, sender="100") -> list[str]:
    seamline = await build(replace(settings, config_dir=config), understanding=understanding)
    adapter = Recorder("telegram")
    seamline.pipeline.register(adapter)
    try:
        for n, text in enumerate(texts):
            await seamline.pipeline.handle(telegram(text, update_id=n, sender=sender))
    finally:
        await seamline.close()
    return [reply.text for _, reply in adapter.sent]


async def test_a_profanity_filter_from_the_project_changes_what_the_bot_answers(settings, understanding, project):
    config = with_steps(
        project,
        """
        [pipeline]
        steps = [{use = "my_bot_steps:ProfanityFilter", before = "understand"}]
    """,
    )
    said = await answers(settings, understanding, config, "you stupid bot", "how much is delivery")
    assert said[0] == "Let's keep it polite, please." and "deliver" in said[1].lower()


async def test_a_crm_lookup_sets_a_profile_attribute_the_routing_sees(settings, understanding, project):
    config = with_steps(
        project,
        """
        [pipeline]
        steps = [{use = "my_bot_steps:CrmLookup", after = "store", options = {vip_senders = ["777"]}}]
    """,
    )
    vip = await answers(settings, understanding, config, "how much is delivery", sender="777")
    plain = await answers(settings, understanding, config, "how much is delivery", sender="100")
    assert len(vip) == 2 and len(plain) == 1  # the VIP is also told a person is coming


async def test_an_async_function_added_in_code_is_a_step(settings, understanding, project):
    import my_bot_steps

    seamline = await build(settings, understanding=understanding)
    adapter = Recorder("telegram")
    seamline.pipeline.register(adapter)
    seamline.pipeline.add_step(my_bot_steps.shout)  # at the end of the walk
    try:
        await seamline.pipeline.handle(telegram("hello", update_id=1))
    finally:
        await seamline.close()
    [(_, reply)] = adapter.sent
    assert reply.text == reply.text.upper() and [s.name for s in seamline.pipeline.steps][-1] == "shout"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ('{use = "my_bot_steps:ProfanityFilter", before = "understnad"}', "'understnad', which is not a step"),
        ('{use = "no_such_module:Step"}', "module 'no_such_module' cannot be imported"),
        ('{use = "my_bot_steps:Nope"}', "has no 'Nope'"),
        ('{use = "my_bot_steps:NOT_A_STEP"}', "is not a step"),
        ('{use = "my_bot_steps"}', 'is not "module:attribute"'),
        ('{use = "my_bot_steps:CrmLookup", options = {colour = "red"}}', "could not be made with options"),
        ('{use = "my_bot_steps:ProfanityFilter", before = "store", after = "store"}', "both before"),
    ],
)
async def test_a_wrong_step_setting_stops_the_app_naming_setting_problem_and_fix(
    settings, understanding, project, entry, problem
):
    config = with_steps(project, f"[pipeline]\nsteps = [{entry}]\n")
    with pytest.raises(ConfigError) as error:
        await build(replace(settings, config_dir=config), understanding=understanding)
    assert "[pipeline] steps[0]" in error.value.setting and problem in error.value.problem and error.value.fix


def test_no_pipeline_table_no_project_steps(config_dir):
    assert configured_steps(config_dir) == []
