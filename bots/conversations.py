"""``seamline test``: conversation scripts (YAML) run through the real bot, with a readable diff.

A bot author writes what a customer says and what must come back, in the project's
``tests/conversations/*.yml`` (docs/testing.md has the format); each conversation is a new customer
walking the real pipeline (seamline.testing.Bot: the project's config, domain, rules, forms and
actions, a temporary database). Each turn is checked step by step; a failing conversation prints the
turns it expected beside the ones it got (what was understood, every reply and which response it is,
the slots, the actions run, the handoff state), so the fix is visible without a debugger. The command itself,
with ``--junit-xml``, is bots/conversations_cli.py.

Why scripts rather than pytest functions: the people who word a bot's answers are not always the
ones who write Python, and Rasa users already keep their conversations as YAML test stories.
"""

from __future__ import annotations

import hashlib
import os
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seamline.shared.errors import ConfigError, HandoffError
from seamline.shared.handoff_states import STATES

DEFAULT_CHANNEL = "web"
STEP_KINDS = ("user", "bot", "intent", "slot", "action", "handoff", "switch_channel", "agent", "say", "answer")
# Keys that may sit beside the step's kind in one item.
EXTRAS = {"user": {"intent", "channel", "payload"}, "say": {"intent", "answer", "channel", "payload"}}


@dataclass(frozen=True)
class Conversation:
    name: str
    file: str
    language: str | None
    steps: tuple[dict[str, Any], ...]


@dataclass
class Result:
    conversation: Conversation
    lines: list[str] = field(default_factory=list)  # the turns, expected beside actual
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None  # the script could not run (the bot raised)

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None

    def report(self) -> str:
        head = f"{'PASS' if self.passed else 'FAIL'} {self.conversation.name}  ({self.conversation.file})"
        if self.passed:
            return head
        body = [*self.lines]
        if self.error:
            body.append(f"  error: {self.error}")
        return "\n".join([head, *body])


# -- reading ---------------------------------------------------------------------------------------


def discover(project: Path, paths: Sequence[Path] = ()) -> list[Path]:
    """The script files: those named (a folder: its *.yml), else the project's
    tests/conversations/*.yml and the older tests/conversations.yml."""
    if not paths:
        tests = project / "tests"
        paths = [tests / "conversations", tests / "conversations.yml"]
        found = [p for p in paths if p.exists()]
        if not found:
            raise ConfigError(
                str(tests / "conversations"), "has no conversation scripts", "Write one (see docs/testing.md)"
            )
        paths = found
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted([*path.glob("*.yml"), *path.glob("*.yaml")])
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(str(path), "does not exist", "Name a conversation script or a folder of them")
    return files


def load(path: Path) -> list[Conversation]:
    """The conversations of one script; a malformed one is a ConfigError naming it and the step."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"is not valid YAML ({exc})", "Fix the file") from exc
    items = document.get("conversations") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ConfigError(str(path), "has no `conversations:` list", "See docs/testing.md for the format")
    conversations = []
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict) or not isinstance(item.get("steps"), list):
            raise ConfigError(str(path), f"conversation {number} has no `steps:` list", "Give it steps")
        name = str(item.get("name") or f"conversation {number}")
        for index, step in enumerate(item["steps"], 1):
            _check_step(path, name, index, step)
        language = item.get("language")
        conversations.append(
            Conversation(name, _shown(path), str(language) if language else None, tuple(item["steps"]))
        )
    return conversations


def _shown(path: Path) -> str:
    """The file as the author names it: relative to the working folder when it is inside."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def _check_step(path: Path, name: str, index: int, step: Any) -> None:
    kinds = [k for k in step if k in STEP_KINDS] if isinstance(step, dict) else []
    main = next((k for k in ("user", "say") if k in kinds), kinds[0] if len(kinds) == 1 else None)
    unknown = set(step) - {main} - EXTRAS.get(main or "", set()) if isinstance(step, dict) else set()
    if main is None or unknown:
        raise ConfigError(
            str(path),
            f"conversation {name!r}, step {index}: {step!r} is not a step",
            f"Write one of {', '.join(k + ':' for k in STEP_KINDS[:8])} per step (docs/testing.md)",
        )
    if main == "handoff" and step["handoff"] not in STATES:
        raise ConfigError(
            str(path),
            f"conversation {name!r}, step {index}: handoff {step['handoff']!r} is not a state",
            f"Use one of: {', '.join(STATES)}",
        )
    if main == "slot" and not isinstance(step["slot"], dict):
        raise ConfigError(
            str(path), f"conversation {name!r}, step {index}: slot needs a mapping", "Write slot: {name: value}"
        )


# -- running ---------------------------------------------------------------------------------------


class _Run:
    """One conversation as it goes: the customer, their channel, the replies of the last turn."""

    def __init__(self, bot: Any, conversation: Conversation) -> None:
        self.bot, self.conversation = bot, conversation
        digest = hashlib.sha256(f"{conversation.file}:{conversation.name}".encode()).hexdigest()[:16]
        self.customer = f"script-{digest}"
        self.channel = DEFAULT_CHANNEL
        self.turn: Any = None  # the last seamline.testing.Turn
        self.replies: list[str] = []  # the texts of the replies the next `bot:` steps are matched to
        self.cursor = 0
        self.result = Result(conversation)

    def line(self, text: str) -> None:
        self.result.lines.append(text)

    def check(self, ok: bool, expected: str, actual: str) -> None:
        if ok:
            self.line(f"      ok  {expected}")
        else:
            self.line(f"    FAIL  {expected}")
            self.line(f"          got: {actual}")
            self.result.failures.append(f"{expected} — got: {actual}")

    def step(self, step: dict[str, Any]) -> None:
        if "user" in step or "say" in step:
            self.user(step)
        elif "bot" in step or "answer" in step:
            self.bot_said(str(step.get("bot", step.get("answer"))))
        elif "intent" in step:
            self.intent(str(step["intent"]))
        elif "slot" in step:
            self.slots(step["slot"])
        elif "action" in step:
            self.action(step["action"])
        elif "handoff" in step:
            self.handoff(str(step["handoff"]))
        elif "switch_channel" in step:
            self.switch(str(step["switch_channel"]))
        elif "agent" in step:
            self.agent(str(step["agent"]))

    def user(self, step: dict[str, Any]) -> None:
        text = str(step.get("user", step.get("say")))
        channel = str(step.get("channel") or self.channel)
        if channel != self.channel and self.turn is not None:
            self.switch(channel)
        self.channel = channel
        turn = self.bot.say(
            text,
            customer=self.customer,
            payload=step.get("payload"),
            channel=channel,
            language=self.conversation.language,
        )
        self.turn, self.replies, self.cursor = turn, turn.texts, 0
        self.line(f"  user ({channel}): {text}")
        self.line(f"          understood: {turn.intent} ({turn.confidence:.2f})")
        for reply in turn.texts:
            self.line(f"          bot: {_said(turn, reply)}")
        self.line(f"          slots: {_slots(turn.slots)}; actions: {list(turn.actions)}; handoff: {turn.handoff}")
        for problem in turn.problems:
            self.line(f"          problem: {problem}")
        if "intent" in step:
            self.intent(str(step["intent"]))
        if "answer" in step:
            self.bot_said(str(step["answer"]))

    def _need_turn(self, what: str) -> bool:
        if self.turn is None:
            self.check(False, what, "no customer message before it")
        return self.turn is not None

    def intent(self, intent: str) -> None:
        if self._need_turn(f"intent: {intent}"):
            self.check(
                self.turn.intent == intent, f"intent: {intent}", f"{self.turn.intent} ({self.turn.confidence:.2f})"
            )

    def bot_said(self, expected: str) -> None:
        """The next reply of the turn (in order, skipping ones no step names) that is a variant of
        response ``expected``, or is that very text."""
        if not self._need_turn(f"bot: {expected}"):
            return
        known = any(expected in table for table in self.turn.responses.values())
        for index in range(self.cursor, len(self.replies)):
            reply = self.replies[index]
            if reply.strip() == expected.strip() or (known and expected in self.turn.keys(reply)):
                self.cursor = index + 1
                self.check(True, f"bot: {expected}", "")
                return
        rest = [_said(self.turn, r) for r in self.replies[self.cursor :]]
        what = f"is a variant of response {expected!r}" if known else f"is {expected!r} (no response has that name)"
        self.check(False, f"bot: {expected}", f"no reply left {what}; the replies: {rest}")

    def _session(self) -> Any:
        session = self.bot.session(self.customer, channel=self.channel)
        if session is None:
            raise AssertionError("the customer has no session")  # a bot that lost it: reported as an error
        return session

    def slots(self, expected: Any) -> None:
        if not isinstance(expected, dict) or not self._need_turn(f"slot: {expected}"):
            return
        slots = self._session().slots
        for name, value in expected.items():
            actual = slots.get(name)
            same = actual == value or (actual is not None and value is not None and str(actual) == str(value))
            self.check(same, f"slot: {name} = {value!r}", repr(actual))

    def action(self, expected: Any) -> None:
        names = expected if isinstance(expected, list) else [expected]
        if self._need_turn(f"action: {expected}"):
            for name in names:
                self.check(name in self.turn.actions, f"action: {name}", f"actions run: {list(self.turn.actions)}")

    def handoff(self, state: str) -> None:
        if self._need_turn(f"handoff: {state}"):
            actual = self._session().handoff
            self.check(actual == state, f"handoff: {state}", actual)

    def switch(self, channel: str) -> None:
        if channel == self.channel:
            return
        if self.turn is None:  # nothing said yet: the customer simply starts there
            self.channel = channel
            return
        self.bot.link(self.customer, channel, on=self.channel)
        self.line(f"  switch_channel: {self.channel} -> {channel} (the same customer, linked)")
        self.channel = channel

    def agent(self, text: str) -> None:
        self.line(f"  agent: {text}")
        try:
            received = self.bot.agent_says(text, customer=self.customer, channel=self.channel)
        except HandoffError as exc:
            self.check(False, f"agent: {text}", f"the agent could not take the conversation ({exc})")
            return
        texts = [reply.text for reply in received]
        for reply in texts:
            self.line(f"          customer got: {reply}")
        self.replies, self.cursor = texts, 0
        self.check(text in texts, f"agent: {text} (the customer gets it)", repr(texts))


def _said(turn: Any, reply: str) -> str:
    keys = turn.keys(reply)
    return f"{reply!r}" + (f" ({', '.join(keys)})" if keys else "")


def _slots(slots: dict[str, Any]) -> str:
    shown = {k: v for k, v in slots.items() if v is not None}
    return repr(shown) if shown else "{}"


def run(bot: Any, conversation: Conversation) -> Result:
    """Walk one conversation through ``bot`` (a seamline.testing.Bot)."""
    walk = _Run(bot, conversation)
    started = time.perf_counter()
    try:
        for step in conversation.steps:
            walk.step(step)
    except Exception as exc:  # noqa: BLE001 — the bot's failure is this script's result, not a crash of the suite
        where = traceback.extract_tb(exc.__traceback__)[-1]
        walk.result.error = f"{exc.__class__.__name__}: {exc} (at {where.filename}:{where.lineno})"
    walk.result.seconds = time.perf_counter() - started
    return walk.result


def run_all(bot: Any, conversations: Iterable[Conversation]) -> list[Result]:
    return [run(bot, conversation) for conversation in conversations]
