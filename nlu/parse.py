"""What understanding a message yields, and the interface every classifier implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True)
class Entity:
    type: str
    value: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Parse:
    intent: str
    confidence: float
    ranking: tuple[tuple[str, float], ...] = ()
    entities: tuple[Entity, ...] = ()
    language: str | None = None

    @property
    def understood(self) -> bool:
        return self.intent != OUT_OF_SCOPE

    def entity(self, kind: str) -> str | None:
        return next((e.value for e in self.entities if e.type == kind), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "intent": self.intent,
            "confidence": self.confidence,
            "language": self.language,
            "ranking": [{"intent": i, "confidence": round(c, 4)} for i, c in self.ranking],
            "entities": [
                {"type": e.type, "value": e.value, "text": e.text, "start": e.start, "end": e.end}
                for e in self.entities
            ],
        }


class Classifier(Protocol):
    """Anything that ranks intents for a text. Confidences are in 0..1 and sum to at most 1."""

    intents: tuple[str, ...]

    def rank(self, text: str) -> list[tuple[str, float]]: ...
