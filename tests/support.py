"""Helpers the tests share, written once: waiting for something to become true, a channel that keeps
what the bot sent, a free TCP port, headless Chromium. Fixtures built on them are in conftest.py.

Why these shapes: a test waits on a condition, never on a clock (``eventually`` polls with a generous
timeout and fails naming what it waited for, so a slow machine is slower, not red); a recorder is a
real adapter as far as the pipeline is concerned (a ``channel`` name and ``send``), not a mock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from seamline.shared.message import Reply

T = TypeVar("T")

CHROMIUM = os.environ.get("SEAMLINE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
    """Wait until ``await check()`` is truthy and return it; fail after ``timeout`` seconds, naming
    the check (its docstring, else its repr)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (result := await check()):
        if loop.time() > deadline:
            pytest.fail(f"not true after {timeout} s: {check.__doc__ or check}")
        await asyncio.sleep(0.02)
    return result


class Recorder:
    """A channel adapter that keeps what it was asked to send, in order: [(address, reply)]."""

    def __init__(self, channel: str = "telegram") -> None:
        self.channel = channel
        self.sent: list[tuple[str, Reply]] = []

    async def send(self, address: str, reply: Reply) -> None:
        self.sent.append((address, reply))

    def texts(self, address: str) -> list[str]:
        """The texts sent to one address."""
        return [reply.text for to, reply in self.sent if to == address]


def free_port() -> int:
    """A TCP port nothing listens on now, for a process that must be told its port in advance
    (a real ``seamline run``); in-process servers bind port 0 instead."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def chromium_or_skip() -> str:
    """Debian's Chromium (tests/services.sh installs it); skipped without it, failed in CI."""
    if not Path(CHROMIUM).exists():
        message = f"Chromium is not installed at {CHROMIUM} (tests/services.sh installs it)"
        if os.environ.get("SEAMLINE_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@contextlib.contextmanager
def start_action_server(folder: Path, module: str = "actions", *, timeout: float = 60.0) -> Iterator[str]:
    """A real Rasa action server, ``python -m rasa_sdk --actions MODULE``, run from ``folder`` (which
    holds the module) on 127.0.0.1 and a free port; yields its webhook URL once GET /health answers.
    Its output goes to ``folder/action-server.log``, shown when it fails to start. Starting takes
    seconds: use it in a module- or session-scoped fixture."""
    port = free_port()
    log = Path(folder) / "action-server.log"
    env = {**os.environ, "SANIC_HOST": "127.0.0.1", "PYTHONPATH": str(folder), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "rasa_sdk", "--actions", module, "--port", str(port)]
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the action server did not start (exit {server.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
