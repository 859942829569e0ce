"""Understanding: training data, intent classification, entities, language."""

from seamline.nlu.parse import Entity, Parse

__all__ = ["Entity", "Parse"]
