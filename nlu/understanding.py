"""``Understanding.parse``: the one call the pipeline makes to understand a text.

It holds a trained model (``nlu.classifier.IntentModel``) and the entity extractor configured
from the same training data, and can swap both for a newly trained model while serving.
"""

from __future__ import annotations

import json
from pathlib import Path

from seamline.nlu.classifier import IntentModel
from seamline.nlu.entities import DEFAULT_ORDER_PATTERN, PatternEntities
from seamline.nlu.language import detect
from seamline.nlu.parse import OUT_OF_SCOPE, Entity, Parse

COMMAND_INTENTS = {"start": "greet", "help": "greet"}


def _command(payload: str | None) -> tuple[str | None, tuple[Entity, ...]]:
    """A button's "/intent" or "/intent{"entity": "value", ...}" -> the intent and those entities
    (a payload whose JSON does not parse carries none)."""
    if not payload or not payload.startswith("/"):
        return None, ()
    head = payload[1:].split(maxsplit=1)[0] if payload[1:].strip() else ""
    name, brace, _rest = head.partition("{")
    if not brace:
        return name, ()
    try:
        data = json.loads(brace + payload[1 + len(name) + 1 :].strip())
    except ValueError:
        return name, ()
    if not isinstance(data, dict):
        return name, ()
    given = tuple(
        Entity(str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False), "", 0, 0)
        for k, v in data.items()
        if v is not None
    )
    return name, given


class Understanding:
    def __init__(self, *, model: IntentModel, entities: PatternEntities) -> None:
        self.model = model
        self._entities = entities

    @classmethod
    def from_model(
        cls, model: IntentModel, *, order_pattern: str = DEFAULT_ORDER_PATTERN, phone_region: str = "RU"
    ) -> Understanding:
        spec = model.metadata.get("entities") or {}
        entities = PatternEntities(
            order_pattern=order_pattern,
            default_region=phone_region,
            regexes=spec.get("regexes") or {},
            lookups=spec.get("lookups") or {},
            synonyms=spec.get("synonyms") or {},
        )
        return cls(model=model, entities=entities)

    @classmethod
    def from_file(cls, path: Path, **options: str) -> Understanding:
        from seamline.nlu import store

        return cls.from_model(store.load(path), **options)

    @classmethod
    def from_config(cls, config_dir: Path, **options: str) -> Understanding:
        """Train in memory from ``config_dir/intents`` (tests, and evaluation without a model file)."""
        from seamline.nlu.data import load
        from seamline.nlu.lifecycle import train_data

        return cls.from_model(train_data(load(config_dir / "intents")), **options)

    @property
    def intents(self) -> tuple[str, ...]:
        return tuple(i for i in self.model.intents if i != OUT_OF_SCOPE)

    @property
    def threshold(self) -> float:
        return self.model.threshold

    def swap(self, other: Understanding) -> None:
        """Serve ``other``'s model and entities from now on (one assignment each: no half state)."""
        self.model, self._entities = other.model, other._entities

    def parse(self, text: str, payload: str | None = None) -> Parse:
        language = detect(text)
        entities = self._entities.extract(text)
        # A pressed button or a command carrying "/intent" means exactly that intent (Rasa's
        # convention); "/start" (a messenger's first contact or deep link) is a greeting.
        # "/intent{"entity": "value"}" (Rasa's syntax) carries entities too.
        command, given = _command(payload)
        if command is not None:
            command = COMMAND_INTENTS.get(command, command)
        if command is not None and command in self.intents:
            return Parse(command, 1.0, ((command, 1.0),), (*given, *entities), language)
        if not text.strip():
            return Parse(OUT_OF_SCOPE, 1.0, (), entities, language)
        model = self.model
        ranking = tuple(model.rank(text))
        return Parse(model.decide(ranking), ranking[0][1], ranking[:5], entities, language)
