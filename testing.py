"""Conversation tests for a bot project: say something as a customer, see what the bot understood
and answered, assert on it. ``seamline init`` writes ``tests/test_conversations.py`` on top of it.

    from seamline.testing import Bot

    def test_a_greeting_is_greeted():
        with Bot("path/to/project") as bot:
            turn = bot.say("hello")
            assert turn.intent == "greet"
            assert turn.answered("greet")  # one of the variants of `greet` in config/responses

Why it looks like this: the bot is the real one (the project's config/, the pipeline with its steps,
the dialogue, routing to people), only its storage is a temporary SQLite database and in-process
sessions, so a test needs no server, ignores the SEAMLINE_* environment and leaves nothing behind.
It understands with the project's trained model when that model matches the training data (after
``seamline nlu train``), else with one trained in memory from config/intents first (seconds for a
small bot). It is synchronous, so plain pytest runs it without an asyncio plugin; do not use it
inside a running event loop.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import yaml

from seamline.shared.errors import SeamlineError
from seamline.shared.message import Message, Reply
from seamline.shared.settings import Settings, load_settings

if TYPE_CHECKING:  # the app and the model load when a Bot is made, not when this module is imported
    from seamline.bots.app import Seamline
    from seamline.nlu.understanding import Understanding

__all__ = ["Bot", "Turn"]

CHANNEL = "test"


@dataclass(frozen=True)
class Turn:
    """One message of the customer and what came back: the intent understood and every reply."""

    text: str
    intent: str
    confidence: float
    language: str | None
    replies: tuple[Reply, ...]
    responses: dict[str, dict[str, list[str]]]  # language -> key -> variant texts, for answered()

    @property
    def texts(self) -> list[str]:
        return [reply.text for reply in self.replies]

    def answered(self, key: str) -> bool:
        """Whether one of the replies is a variant of response ``key`` (any language; a
        ``{placeholder}`` in the variant matches whatever was filled in)."""
        variants = [text for table in self.responses.values() for text in table.get(key, [])]
        if not variants:
            raise KeyError(f"no response {key!r} in config/responses")
        return any(_pattern(variant).fullmatch(reply) for variant in variants for reply in self.texts)


def _pattern(variant: str) -> re.Pattern[str]:
    parts = re.split(r"\{[A-Za-z_][A-Za-z0-9_]*\}", variant)
    return re.compile("(?s)" + ".+?".join(re.escape(part) for part in parts))


class _Recorder:
    """The channel the test customers write on: it keeps what the bot sends them."""

    channel = CHANNEL

    def __init__(self) -> None:
        self.sent: dict[str, list[Reply]] = {}

    async def send(self, address: str, reply: Reply) -> None:
        self.sent.setdefault(address, []).append(reply)


class Bot:
    """A project's bot for tests; use it as a context manager (or call ``close()``)."""

    def __init__(self, project: Path | str = ".") -> None:
        self.project = Path(project).resolve()
        if str(self.project) not in sys.path:
            sys.path.insert(0, str(self.project))  # its actions/ and own modules (steps) import, as under `seamline`
        key = secrets.token_urlsafe(32)  # given, so no key file is written into the project
        home = load_settings({"SEAMLINE_SECRET_KEY": key}, project=self.project)
        self._tmp = tempfile.TemporaryDirectory(prefix="seamline-test-")
        data = Path(self._tmp.name)
        self.settings: Settings = replace(
            home,
            data_dir=data,
            database_url=f"sqlite+aiosqlite:///{data}/seamline.db",
            redis_url="",
            nlu_models=home.models_dir,
        )
        self._runner = asyncio.Runner()
        self._recorder = _Recorder()
        try:
            with ThreadPoolExecutor(1) as pool:  # alembic runs its own event loop
                from seamline.shared.storage.database import upgrade

                pool.submit(upgrade, self.settings.database_url).result()
            self._app = self._runner.run(self._build())
        except BaseException:
            self._runner.close()
            self._tmp.cleanup()
            raise
        self._app.pipeline.register(self._recorder)
        self.responses = _responses(self.settings.config_dir / "responses")

    async def _build(self) -> Seamline:
        from seamline.bots.app import build

        return await build(self.settings, understanding=_understanding(self.settings))

    def say(self, text: str, *, customer: str = "customer", payload: str | None = None) -> Turn:
        """``customer`` writes ``text`` (or presses a button with ``payload``); each customer name
        is one conversation that goes on from call to call."""
        pipeline = self._app.pipeline
        before = len(self._recorder.sent.get(customer, []))
        self._runner.run(
            pipeline.handle(Message(channel=CHANNEL, address=customer, sender=customer, text=text, payload=payload))
        )
        replies = tuple(self._recorder.sent.get(customer, [])[before:])
        # What the bot recorded as understood (a project's step may have answered before the model).
        history = self._runner.run(pipeline.history(CHANNEL, customer, 1000))
        inbound = next((m for m in reversed(history) if m.direction == "in"), None)
        parse = pipeline.understanding.parse(text, payload)
        if inbound is not None and inbound.intent is not None:
            intent, confidence = inbound.intent, float(inbound.confidence or 0.0)
            language = (inbound.nlu or {}).get("language") or parse.language
        else:
            intent, confidence, language = parse.intent, parse.confidence, parse.language
        return Turn(
            text=text,
            intent=intent,
            confidence=confidence,
            language=language,
            replies=replies,
            responses=self.responses,
        )

    def close(self) -> None:
        try:
            self._runner.run(self._app.close())
        finally:
            self._runner.close()
            self._tmp.cleanup()

    def __enter__(self) -> Bot:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def _understanding(settings: Settings) -> Understanding:
    """The trained model if it was trained on today's data, else one trained in memory now."""
    from seamline.nlu.data import fingerprint, load
    from seamline.nlu.understanding import Understanding

    options = {"order_pattern": settings.order_pattern, "phone_region": settings.phone_region}
    try:
        from seamline.nlu.lifecycle import latest

        trained = Understanding.from_file(latest(settings.models_dir), **options)
        if trained.model.metadata.get("fingerprint") == fingerprint(load(settings.intents_dir)):
            return trained
    except SeamlineError:  # no model, a damaged one, or data that does not load: train in memory
        pass
    return Understanding.from_config(settings.config_dir, **options)


def _responses(directory: Path) -> dict[str, dict[str, list[str]]]:
    tables: dict[str, dict[str, list[str]]] = {}
    for path in sorted(directory.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        tables[str(data.get("language", path.stem))] = {
            key: [str(v["text"]) for v in variants if isinstance(v, dict) and "text" in v]
            for key, variants in (data.get("responses") or {}).items()
        }
    return tables
