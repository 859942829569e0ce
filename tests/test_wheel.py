"""The distribution as a bot author gets it: the wheel, installed (not editable), used from a project.

One test walks the whole path, because each step needs the one before: build the wheel from this
working tree, check it installs one top-level name (``seamline``) with ``py.typed`` and the
templates, install it into a fresh virtual environment, then from a temporary folder
``seamline init mybot --template minimal``, ``seamline nlu train``, ``seamline run`` and a chat
over the widget's WebSocket protocol (docs/web-chat-protocol.md), and the project's own
conversation tests with pytest. The fresh environment gets the wheel only; the dependencies come
from this interpreter's site-packages through a .pth file (nothing is downloaded but the build
backend pip may need), and the test checks that the ``seamline`` imported there is the wheel's.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import aiohttp
import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "var",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "node_modules",
)
TIMEOUT = 240  # seconds for any one step; only there so that a hang fails instead of blocking


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of this working tree (the tree itself gets no build/ folder)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = Path(shutil.copytree(ROOT, tmp / "source", ignore=NOT_SOURCE))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = (tmp / "dist").glob("seamline-*.whl")
    return built


def test_the_wheel_installs_one_top_level_name_with_types_and_templates(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (dist_info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        top_level = archive.read(f"{dist_info}/top_level.txt").decode().split()
        record = [line.split(",")[0] for line in archive.read(f"{dist_info}/RECORD").decode().splitlines() if line]
    assert top_level == ["seamline"]
    assert {path.split("/")[0] for path in record} == {"seamline", dist_info}
    assert {path.split("/")[0] for path in names} == {"seamline", dist_info}
    for shipped in (
        "seamline/py.typed",
        "seamline/testing.py",
        "seamline/config/seamline.toml",
        "seamline/config/intents/retail.ru.yml",
        "seamline/config/templates/minimal/intents/minimal.en.yml",
        "seamline/config/templates/minimal/conversations.yml",
        "seamline/config/templates/retail/conversations/en.yml",
        "seamline/config/templates/retail/actions/order_status.py",
        "seamline/config/templates/retail/actions/orders.csv",
        "seamline/config/templates/project/dot-gitignore.tmpl",
        "seamline/config/templates/project/tests/test_conversations.py.tmpl",
    ):
        assert shipped in names, shipped
    assert not [n for n in names if n.startswith("seamline/tests/") or "__pycache__" in n]


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment holding the wheel, seeing this interpreter's dependencies."""
    root = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=TIMEOUT)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(root / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (packages,) = (root / "lib").glob("python3*/site-packages")
    # Path lines only: the editable install's finder in this interpreter's site-packages is not run.
    (packages / "_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return root


def environment(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMLINE_") and k != "PYTHONPATH"}
    return {
        **env,
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "VIRTUAL_ENV": str(venv),
    }


def run(args: list[str], cwd: Path, venv: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=environment(venv), capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    assert "Traceback" not in done.stderr
    return done


async def greet_over_the_widget(port: int) -> str:
    """hello -> welcome, message -> its echo (the ack), then the bot's answer; returns the answer's text."""
    async with aiohttp.ClientSession() as http, http.ws_connect(f"ws://127.0.0.1:{port}/chat/ws") as ws:
        await ws.send_json({"type": "hello", "token": None, "lang": "en"})
        welcome = await ws.receive_json(timeout=30)
        assert welcome["type"] == "welcome" and welcome["history"] == []
        await ws.send_json({"type": "message", "id": "c-1", "text": "hello"})
        echo = await ws.receive_json(timeout=30)
        assert (echo["type"], echo["role"], echo["id"]) == ("message", "customer", "c-1")
        while True:
            frame = await ws.receive_json(timeout=30)
            if frame["type"] == "message" and frame["role"] == "bot":
                return frame["text"]


def test_a_project_made_with_the_installed_wheel_trains_runs_chats_and_passes_its_tests(venv, tmp_path):
    python, seamline = venv / "bin" / "python", venv / "bin" / "seamline"
    where = run([str(python), "-c", "import seamline; print(seamline.__file__)"], tmp_path, venv).stdout.strip()
    assert Path(where).is_relative_to(venv), f"seamline imported from {where}, not from the wheel"

    run([str(seamline), "init", "mybot", "--template", "minimal"], tmp_path, venv)
    project = tmp_path / "mybot"
    run([str(seamline), "nlu", "train"], project, venv)
    assert list((project / "var" / "models").glob("nlu-*.npz"))

    port = free_port()
    env = {**environment(venv), "SEAMLINE_PORT": str(port)}
    process = subprocess.Popen(
        [str(seamline), "run"], cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        for line in process.stdout:
            if "Seamline is running" in line:
                break
        else:
            pytest.fail(f"seamline run stopped: {process.stderr.read()}")
        answer = asyncio.run(greet_over_the_widget(port))
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert "Traceback" not in err, err
    greetings = yaml.safe_load((project / "config" / "responses" / "en.yml").read_text(encoding="utf-8"))
    assert answer in [variant["text"] for variant in greetings["responses"]["greet"]]
    assert (project / "var" / "seamline.db").is_file()  # the project's data stays in the project

    tests = run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], project, venv)
    assert " passed" in tests.stdout and "failed" not in tests.stdout
