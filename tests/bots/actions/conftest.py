"""One copy of the test actions package per run, and one real action server serving it: starting
``python -m rasa_sdk`` takes seconds, so every test of this package shares it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from seamline.bots.dialogue.action_server import RemoteActions, load_module

from tests.bots.actions.sample import PROJECT
from tests.support import start_action_server


@pytest.fixture(scope="package")
def project(tmp_path_factory) -> Path:
    """The test actions package in a folder of its own, as a bot project holds it."""
    folder = tmp_path_factory.mktemp("bot") / "project"
    shutil.copytree(PROJECT, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


@pytest.fixture(scope="package")
def remote_url(project: Path):
    with start_action_server(project) as url:
        yield url


@pytest.fixture(params=["in_process", "remote"])
async def server(request, project: Path):
    actions = load_module("actions", project) if request.param == "in_process" else None
    if actions is None:
        actions = RemoteActions(request.getfixturevalue("remote_url"))
    yield actions
    await actions.close()
