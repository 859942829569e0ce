"""A light intent classifier: character and word n-grams with logistic regression.

Character n-grams make it forgiving of typos and Russian word endings; it trains in seconds on
the shipped data and needs nothing downloaded. scikit-learn fits the model; parsing one message
then runs on plain dictionaries and a NumPy gather (tens of microseconds instead of the
milliseconds scikit-learn's per-call checks cost), with results equal to ``predict_proba``.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
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
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
                TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b"),
            ),
            LogisticRegression(C=20.0, max_iter=2000),
        )
        self._model.fit([normalize(e.text) for e in examples], [e.intent for e in examples])
        self.intents = tuple(str(c) for c in self._model.classes_)
        self._compile()

    def _compile(self) -> None:
        union, regression = self._model.steps[0][1], self._model.steps[1][1]
        self._parts = []
        offset = 0
        for _, vectorizer in union.transformer_list:
            analyze, vocabulary = vectorizer.build_analyzer(), vectorizer.vocabulary_
            if vectorizer.analyzer == "char_wb":
                # char_wb n-grams never cross a space, so a text's terms are its words' terms:
                # known words are looked up once (words repeat, as words do) instead of re-cut.
                features = _per_word(analyze, vocabulary)
            else:
                features = _whole_text(analyze, vocabulary)
            self._parts.append((features, vectorizer.idf_, offset))
            offset += len(vocabulary)
        self._coef = np.ascontiguousarray(regression.coef_.T)  # features x classes
        self._intercept = regression.intercept_
        if self._coef.shape[1] == 1:  # binary: scikit-learn keeps one column for the positive class
            self._coef = np.hstack([-self._coef / 2, self._coef / 2])
            self._intercept = np.array([-self._intercept[0] / 2, self._intercept[0] / 2])

    def rank(self, text: str) -> list[tuple[str, float]]:
        text = normalize(text)
        logits = self._intercept.copy()
        for features, idf, offset in self._parts:
            counts = Counter(features(text))
            if not counts:
                continue
            indices = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
            weights = (1.0 + np.log(np.fromiter(counts.values(), dtype=float, count=len(counts)))) * idf[indices]
            weights /= np.sqrt(weights @ weights)  # each vectorizer is L2-normalised on its own
            logits += weights @ self._coef[indices + offset]
        logits -= logits.max()
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum()
        return sorted(zip(self.intents, probabilities.tolist()), key=lambda pair: -pair[1])

    def reference_rank(self, text: str) -> list[tuple[str, float]]:
        """The same ranking through scikit-learn, slow; kept to check the fast path against."""
        probabilities = self._model.predict_proba([normalize(text)])[0]
        return sorted(zip(self.intents, (float(p) for p in probabilities)), key=lambda pair: -pair[1])


def _whole_text(analyze, vocabulary: dict[str, int]):
    def features(text: str) -> list[int]:
        return [vocabulary[term] for term in analyze(text) if term in vocabulary]

    return features


def _per_word(analyze, vocabulary: dict[str, int], capacity: int = 50_000):
    """The vocabulary indices of a text's terms, with each word's indices memoised (bounded)."""
    cache: dict[str, list[int]] = {}

    def features(text: str) -> list[int]:
        found: list[int] = []
        for word in text.split():
            known = cache.get(word)
            if known is None:
                known = [vocabulary[term] for term in analyze(word) if term in vocabulary]
                if len(cache) >= capacity:
                    cache.clear()
                cache[word] = known
            found.extend(known)
        return found

    return features
