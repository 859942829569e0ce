"""A real ``seamline run`` (one process or a supervisor of N workers) for the operations tests.

The command as a user runs it, in a subprocess: its stdout lines are read in a thread (the tests
wait for the "Seamline is running. Open ..." line), its stderr (the log) goes to a file.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import SECRET
from tests.support import free_port

START_SECONDS = 120.0  # two busy cores: N workers load N models


def environment(tmp_path: Path, models_dir: Path, config_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEAMLINE_", "PROMETHEUS_"))}
    env.update(
        SEAMLINE_CONFIG_DIR=str(config_dir),
        SEAMLINE_NLU_MODELS=str(models_dir),
        SEAMLINE_DATA_DIR=str(tmp_path / "var"),
        SEAMLINE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/var/seamline.db",
        SEAMLINE_SECRET_KEY=SECRET,
        SEAMLINE_PORT=str(free_port()),
        SEAMLINE_HOST="127.0.0.1",
        SEAMLINE_LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
    )
    env.update(settings)
    return env


class Running:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.url = f"http://127.0.0.1:{env['SEAMLINE_PORT']}"
        with open(log, "w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "seamline", *args], stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
            )
        self.lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, text: str, timeout: float = START_SECONDS) -> str:
        """The first stdout line holding ``text`` (from the lines not yet seen)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if text in line:
                    self.lines.remove(line)
                    return line
            try:
                line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {text!r} within {timeout} s; stdout: {self.lines}") from None
            if line is None:
                raise AssertionError(
                    f"exited ({self.process.wait()}) before {text!r}: {self.lines}\n{self.log.read_text()}"
                )
            self.lines.append(line)

    def started(self) -> Running:
        self.wait_for(f"Seamline is running. Open {self.url}/")
        return self

    def records(self) -> list[dict[str, Any]]:
        """The JSON log records so far (every line of the log is one)."""
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        if self.process.stdout:
            self.process.stdout.close()


class Visitor:
    """A website visitor's widget socket (docs/web-chat-protocol.md)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, url: str) -> Visitor:
        visitor = cls(await http.ws_connect(url.replace("http", "ws", 1) + "/chat/ws"))
        await visitor.ws.send_json({"type": "hello", "token": None, "lang": "en"})
        welcome = await visitor.ws.receive_json(timeout=30)
        assert welcome["type"] == "welcome", welcome
        return visitor

    async def say(self, text: str, id: str) -> None:
        await self.ws.send_json({"type": "message", "id": id, "text": text})

    async def bot_says(self, timeout: float = 30) -> str:
        """The text of the next bot message (other frames are kept in ``frames``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.ws.receive_json(timeout=max(0.1, deadline - loop.time()))
            self.frames.append(frame)
            if frame.get("type") == "message" and frame.get("role") == "bot":
                return str(frame.get("text", ""))
