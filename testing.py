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

A customer may write on any channel (``say(..., channel="telegram")``); ``link`` makes them the same
customer on another channel (as a proven link does), and ``agent_says`` has a person take the
conversation and answer. Each ``Turn`` also carries what the dialogue did: the custom actions run,
the slots, the open form and the handoff state after it. ``seamline test`` (bots/conversations.py)
runs YAML conversation scripts on top of this.
"""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import yaml

from seamline.shared.errors import SeamlineError
from seamline.shared.message import Message, Reply
from seamline.shared.session import Session
from seamline.shared.settings import Settings, load_settings

if TYPE_CHECKING:  # the app and the model load when a Bot is made, not when this module is imported
    from seamline.bots.app import Seamline
    from seamline.bots.conversations import Conversation, Result
    from seamline.bots.steps.turn import Next
    from seamline.bots.steps.turn import Turn as PipelineTurn
    from seamline.nlu.understanding import Understanding

__all__ = ["Bot", "Turn", "conversations"]

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
    channel: str = CHANNEL
    actions: tuple[str, ...] = ()  # custom actions the dialogue ran this turn, in order
    slots: dict[str, Any] = field(default_factory=dict)  # after the turn
    active_form: str | None = None  # after the turn
    handoff: str = "bot"  # the conversation's state after the turn: bot | queued | with_agent | ...
    problems: tuple[str, ...] = ()  # why a custom action failed this turn (the console shows the same)

    @property
    def texts(self) -> list[str]:
        return [reply.text for reply in self.replies]

    def answered(self, key: str) -> bool:
        """Whether one of the replies is a variant of response ``key`` (any language; a
        ``{placeholder}`` in the variant matches whatever was filled in)."""
        if not any(key in table for table in self.responses.values()):
            raise KeyError(f"no response {key!r} in config/responses")
        return any(is_variant(self.responses, key, reply) for reply in self.texts)

    def keys(self, text: str) -> list[str]:
        """The responses ``text`` is a variant of (for a readable report)."""
        return sorted(
            {key for table in self.responses.values() for key in table if is_variant(self.responses, key, text)}
        )


def is_variant(responses: dict[str, dict[str, list[str]]], key: str, text: str) -> bool:
    """Whether ``text`` is one of the variants of response ``key`` in any language, placeholders filled."""
    return any(_pattern(variant).fullmatch(text) for table in responses.values() for variant in table.get(key, []))


@functools.lru_cache(maxsize=4096)
def _pattern(variant: str) -> re.Pattern[str]:
    parts = re.split(r"\{[A-Za-z_][A-Za-z0-9_]*\}", variant)
    return re.compile("(?s)" + ".+?".join(re.escape(part) for part in parts))


class _Recorder:
    """A channel the test customers write on: it keeps what the bot sends them (one shared list per
    address, whatever the channel, so a linked customer's replies are read in one place)."""

    def __init__(self, channel: str, sent: dict[str, list[Reply]]) -> None:
        self.channel = channel
        self.sent = sent

    async def send(self, address: str, reply: Reply) -> None:
        self.sent.setdefault(address, []).append(reply)


class _Watch:
    """The first step of the walk: it keeps the last turn walked (the dialogue's decision, the
    session), so a test sees the actions run and the slots, not only the replies."""

    name = "seamline.testing"
    before = "dedupe"

    def __init__(self) -> None:
        self.last: PipelineTurn | None = None

    async def __call__(self, turn: PipelineTurn, call_next: Next) -> None:
        self.last = None
        try:
            await call_next(turn)
        finally:
            self.last = turn


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
        self._sent: dict[str, list[Reply]] = {}
        self._channels: set[str] = set()
        self._watch = _Watch()
        try:
            with ThreadPoolExecutor(1) as pool:  # alembic runs its own event loop
                from seamline.shared.storage.database import upgrade

                pool.submit(upgrade, self.settings.database_url).result()
            self._app = self._runner.run(self._build())
        except BaseException:
            self._runner.close()
            self._tmp.cleanup()
            raise
        self._channel(CHANNEL)
        self._app.pipeline.add_step(self._watch, before=self._watch.before)
        self.responses = _responses(self.settings.config_dir / "responses")

    async def _build(self) -> Seamline:
        from seamline.bots.app import build

        return await build(self.settings, understanding=_understanding(self.settings))

    @property
    def app(self) -> Seamline:
        """The running bot (its pipeline, stores, handoff) for what the methods here do not cover."""
        return self._app

    def _channel(self, channel: str) -> None:
        if channel not in self._channels:  # a recorder per channel, registered once
            self._channels.add(channel)
            self._app.pipeline.register(_Recorder(channel, self._sent))

    def say(
        self,
        text: str,
        *,
        customer: str = "customer",
        payload: str | None = None,
        channel: str = CHANNEL,
        language: str | None = None,
    ) -> Turn:
        """``customer`` writes ``text`` (or presses a button with ``payload``) on ``channel`` (a
        channel's language hint, as Telegram gives one, in ``language``); each customer name is one
        conversation that goes on from call to call."""
        pipeline = self._app.pipeline
        self._channel(channel)
        before = len(self._sent.get(customer, []))
        message = Message(
            channel=channel, address=customer, sender=customer, text=text, payload=payload, language=language
        )
        self._runner.run(pipeline.handle(message))
        replies = tuple(self._sent.get(customer, [])[before:])
        walked = self._watch.last
        # What the bot recorded as understood (a project's step may have answered before the model).
        history = self._runner.run(pipeline.history(channel, customer, 1000))
        inbound = next((m for m in reversed(history) if m.direction == "in"), None)
        parse = pipeline.understanding.parse(text, payload)
        if inbound is not None and inbound.intent is not None:
            intent, confidence = inbound.intent, float(inbound.confidence or 0.0)
            language = (inbound.nlu or {}).get("language") or parse.language
        else:
            intent, confidence, language = parse.intent, parse.confidence, parse.language
        decision = walked.decision if walked is not None else None
        session = self.session(customer, channel=channel)
        return Turn(
            text=text,
            intent=intent,
            confidence=confidence,
            language=language,
            replies=replies,
            responses=self.responses,
            channel=channel,
            actions=tuple(getattr(decision, "actions", ()) or ()),
            problems=tuple(getattr(decision, "problems", ()) or ()),
            slots=dict(session.slots) if session is not None else {},
            active_form=session.active_form if session is not None else None,
            handoff=session.handoff if session is not None else "bot",
        )

    def session(self, customer: str = "customer", *, channel: str = CHANNEL) -> Session | None:
        """The customer's session as it is now (slots, open form, handoff state), or None."""

        async def load() -> Session | None:
            found = await self._app.store.find_customer(channel, customer)
            return None if found is None else await self._app.sessions.load(found.id)

        return self._runner.run(load())

    def link(self, customer: str, channel: str, *, on: str = CHANNEL) -> None:
        """``customer`` (known on channel ``on``) is now also reachable on ``channel``, as after a
        proven link: their next message there is the same conversation."""
        self._channel(channel)

        async def link() -> None:
            found = await self._app.store.find_customer(on, customer)
            if found is None:
                raise KeyError(f"{customer!r} has not written on {on} yet")
            await self._app.store.add_identity(found.id, channel, customer, customer)

        self._runner.run(link())

    def agent_says(
        self, text: str, *, customer: str = "customer", channel: str = CHANNEL, agent: str = "Anna"
    ) -> tuple[Reply, ...]:
        """An agent named ``agent`` takes the customer's waiting conversation (if they do not hold it
        yet) and writes ``text``; returns what the customer received (the "joined" notice, the text).
        A conversation nobody asked a person for is refused (HandoffError), as in the console."""
        before = len(self._sent.get(customer, []))

        async def reply() -> None:
            app = self._app
            found = await app.store.find_customer(channel, customer)
            session = None if found is None else await app.sessions.load(found.id)
            if session is None:
                raise KeyError(f"{customer!r} has no conversation on {channel}")
            from seamline.handoff.agents import AgentStore

            accounts, email = AgentStore(app.store), f"{agent.lower().replace(' ', '.')}@agents.test"
            person = await accounts.by_email(email) or await accounts.add(
                email, name=agent, password=secrets.token_urlsafe(24), queues=[], role="admin"
            )
            await app.handoff.claim(person, session.conversation_id)
            await app.handoff.reply(person, session.conversation_id, text)

        self._runner.run(reply())
        return tuple(self._sent.get(customer, [])[before:])

    def play(self, conversation: Conversation) -> Result:
        """Run one conversation script (see ``conversations``) as a new customer: ``result.passed``,
        and ``result.report()`` shows the expected and the actual turns."""
        from seamline.bots.conversations import run

        return run(self, conversation)

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


def conversations(project: Path | str = ".", *paths: Path | str) -> list[Conversation]:
    """The conversation scripts of a project (tests/conversations/*.yml and tests/conversations.yml),
    or of the files and folders named: what ``seamline test`` runs (docs/testing.md)."""
    from seamline.bots.conversations import discover, load

    return [c for file in discover(Path(project), [Path(p) for p in paths]) for c in load(file)]


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
