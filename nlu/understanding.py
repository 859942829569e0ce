"""``Understanding.parse``: the one call the pipeline makes to understand a text."""
from __future__ import annotations

from pathlib import Path

from nlu.classifier import NgramClassifier
from nlu.data import load_intents
from nlu.entities import PatternEntities
from nlu.language import detect
from nlu.parse import OUT_OF_SCOPE, Classifier, Parse


COMMAND_INTENTS = {"start": "greet", "help": "greet"}


class Understanding:
    def __init__(self, *, classifier: Classifier, entities: PatternEntities, threshold: float = 0.3) -> None:
        self._classifier = classifier
        self._entities = entities
        self.threshold = threshold

    @classmethod
    def from_config(cls, config_dir: Path, threshold: float = 0.3) -> "Understanding":
        examples, out_of_scope = load_intents(config_dir / "intents")
        return cls(classifier=NgramClassifier(examples + out_of_scope), entities=PatternEntities(),
                   threshold=threshold)

    @property
    def intents(self) -> tuple[str, ...]:
        return tuple(i for i in self._classifier.intents if i != OUT_OF_SCOPE)

    def parse(self, text: str, payload: str | None = None) -> Parse:
        language = detect(text)
        entities = self._entities.extract(text)
        # A pressed button or a command carrying "/intent" means exactly that intent (Rasa's
        # convention); "/start" (a messenger's first contact or deep link) is a greeting.
        command = payload.split(maxsplit=1)[0][1:] if payload and payload.startswith("/") else None
        command = COMMAND_INTENTS.get(command, command)
        if command in self.intents:
            return Parse(command, 1.0, ((command, 1.0),), entities, language)
        if not text.strip():
            return Parse(OUT_OF_SCOPE, 1.0, (), entities, language)
        ranking = tuple(self._classifier.rank(text))
        intent, confidence = ranking[0]
        if intent == OUT_OF_SCOPE or confidence < self.threshold:
            intent = OUT_OF_SCOPE
        return Parse(intent, confidence, ranking[:5], entities, language)
