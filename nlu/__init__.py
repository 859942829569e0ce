"""Understanding: training data, intent classification, entities, language."""
from nlu.parse import Entity, Parse

__all__ = ["Entity", "Parse"]
