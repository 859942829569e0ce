"""A small bot project written in a test's folder: the dialogue's config files as an author writes
them, and one turn through ``Dialogue`` with a parse given outright (no model: what is tested is
what the config makes of an understood message)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from seamline.bots.dialogue import Dialogue, load_domain
from seamline.nlu.parse import OUT_OF_SCOPE, Entity, Parse
from seamline.shared.message import Message
from seamline.shared.session import Session

FRAMEWORK = """
  fallback:
    - text: "{fallback}"
  fallback_offer_human:
    - text: "{offer}"
      buttons: [{{title: "Person", payload: /human_agent}}]
  action_failed:
    - text: "{failed}"
  form_cancelled:
    - text: "{cancelled}"
"""


def project(root: Path, *, domain: str = "", rules: str = "", en: str = "", ru: str = "") -> Path:
    """``root``/config with these files (indented YAML snippets are fine); returns the config folder."""
    config = root / "config"
    (config / "responses").mkdir(parents=True, exist_ok=True)
    (config / "responses" / "en.yml").write_text(
        "language: en\nresponses:\n"
        + FRAMEWORK.format(
            fallback="Sorry?", offer="Shall I call a person?", failed="Something went wrong", cancelled="Stopped."
        )
        + textwrap.indent(textwrap.dedent(en), "  "),
        encoding="utf-8",
    )
    (config / "responses" / "ru.yml").write_text(
        "language: ru\nresponses:\n"
        + FRAMEWORK.format(
            fallback="Простите?", offer="Позвать сотрудника?", failed="Что-то пошло не так", cancelled="Отменил."
        )
        + textwrap.indent(textwrap.dedent(ru), "  "),
        encoding="utf-8",
    )
    if domain:
        (config / "domain.yml").write_text(textwrap.dedent(domain), encoding="utf-8")
    if rules:
        (config / "rules.yml").write_text(textwrap.dedent(rules), encoding="utf-8")
    return config


def dialogue(config: Path, **options) -> Dialogue:
    return Dialogue(domain=load_domain(config), **options)


def parse(intent: str | None, language: str = "en", **entities: str) -> Parse:
    found = tuple(Entity(kind, value, value, 0, len(value)) for kind, value in entities.items())
    name = intent or OUT_OF_SCOPE
    return Parse(name, 1.0 if intent else 0.2, ((name, 1.0),), found, language)


class Chat:
    """One customer talking to ``dialogue``: ``await chat.say("text", "intent", entity=value)``."""

    def __init__(self, dialogue: Dialogue, *, channel: str = "web", language: str = "en", **attributes) -> None:
        self.dialogue = dialogue
        self.channel = channel
        self.session = Session(customer_id="c1", conversation_id="v1", language=language, attributes=attributes)
        self.decisions = []

    async def say(
        self,
        text: str,
        intent: str | None = None,
        *,
        payload: str | None = None,
        language: str | None = None,
        name: str | None = None,
        **entities: str,
    ):
        message = Message(channel=self.channel, address="a", sender="s", text=text, payload=payload, sender_name=name)
        decision = await self.dialogue.decide(
            parse(intent, language or self.session.language, **entities), self.session, message=message
        )
        self.decisions.append(decision)
        return decision

    async def texts(self, text: str, intent: str | None = None, **options) -> list[str]:
        return [r.text for r in (await self.say(text, intent, **options)).replies]


class InProcess:
    """rasa-sdk's own executor as the action server: what the in-process runner wraps."""

    def __init__(self, *actions) -> None:
        from rasa_sdk.executor import ActionExecutor

        self.executor = ActionExecutor()
        for action in actions:
            self.executor.register_action(action)

    def knows(self, name: str) -> bool:
        return name in self.executor.actions

    async def run(self, call: dict) -> dict:
        result = await self.executor.run(call)
        return {"events": result.events, "responses": result.responses}

    async def close(self) -> None:
        return None
