"""A light intent classifier: character and word n-grams with logistic regression.

Character n-grams make it forgiving of typos and Russian word endings; it trains in well
under a second on the shipped data and needs nothing downloaded. Out-of-scope examples are
trained as their own class, and a confidence threshold (applied by ``Understanding``) catches
the rest.
"""
from __future__ import annotations

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union

from nlu.data import Example


def normalize(text: str) -> str:
    return " ".join(text.lower().replace("ё", "е").split())


class NgramClassifier:
    def __init__(self, examples: list[Example]) -> None:
        if len({e.intent for e in examples}) < 2:
            raise ValueError("need examples of at least two intents to train")
        self._model = make_pipeline(
            make_union(
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1),
                TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b"),
            ),
            LogisticRegression(C=20.0, max_iter=2000),
        )
        self._model.fit([normalize(e.text) for e in examples], [e.intent for e in examples])
        self.intents = tuple(str(c) for c in self._model.classes_)

    def rank(self, text: str) -> list[tuple[str, float]]:
        probabilities = self._model.predict_proba([normalize(text)])[0]
        return sorted(zip(self.intents, (float(p) for p in probabilities)), key=lambda pair: -pair[1])
