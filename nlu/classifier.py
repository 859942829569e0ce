"""The default intent classifier: n-gram features, linear one-vs-rest SVMs, calibrated softmax.

Features: character n-grams inside words (forgiving of typos and Russian endings), words and
word pairs, and Snowball stems with stem pairs (one stem for all the forms of a word). Each
block is TF-IDF weighted and L2-normalised on its own. One linear SVM per intent is trained on
the whole vector (liblinear, the classes spread over the cores, with progress reported per
intent). The SVM scores become confidences through a softmax whose temperature is fitted on
held-out data, and a confidence threshold, also chosen on held-out data, sends what matches no
intent to out-of-scope.

scikit-learn fits; parsing one message then runs on plain dictionaries and a NumPy gather
(tens of microseconds instead of the milliseconds scikit-learn's per-call checks cost). The
model is a handful of arrays and vocabularies, so it is saved without pickle (see ``nlu.store``).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import snowballstemmer

from seamline.nlu.parse import OUT_OF_SCOPE

_WORD = re.compile(r"\w+")
_CYRILLIC = re.compile("[а-я]")
_STEMMERS = {"ru": snowballstemmer.stemmer("russian"), "en": snowballstemmer.stemmer("english")}


def normalize(text: str) -> str:
    return " ".join(text.lower().replace("ё", "е").split())


def stems(text: str) -> list[str]:
    """Stems of the words (Russian or English Snowball by the word's letters) and stem pairs."""
    words = _WORD.findall(text)
    out = [(_STEMMERS["ru"] if _CYRILLIC.search(w) else _STEMMERS["en"]).stemWord(w) for w in words]
    return out + [f"{a} {b}" for a, b in itertools.pairwise(out)]


# The feature blocks: (kind, options for scikit-learn's TfidfVectorizer).
FEATURES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("char", dict(analyzer="char_wb", ngram_range=(2, 5))),
    ("word", dict(analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b")),
    ("stem", dict(analyzer=stems)),
)
SVM_C = 1.0  # chosen on the CLINC150 validation splits (0.3, 1.0 tried)


@dataclass
class Block:
    """One feature block as parsing needs it: its kind, vocabulary and IDF weights."""

    kind: str
    vocabulary: dict[str, int]
    idf: np.ndarray
    offset: int = 0
    _features: Callable[[str], list[int]] | None = field(default=None, repr=False)

    def features(self, text: str) -> list[int]:
        if self._features is None:
            self._features = (
                _per_word(self.vocabulary) if self.kind == "char" else _whole_text(self.kind, self.vocabulary)
            )
        return self._features(text)


@dataclass
class IntentModel:
    intents: tuple[str, ...]
    blocks: list[Block]
    coef: np.ndarray  # features x intents, float32
    intercept: np.ndarray  # intents
    scale: float = 1.0  # softmax(scale * scores): the fitted inverse temperature
    threshold: float = 0.0  # below this confidence: out-of-scope
    metadata: dict[str, Any] = field(default_factory=dict)

    def scores(self, text: str) -> np.ndarray:
        text = normalize(text)
        scores = self.intercept.astype(np.float64)
        for block in self.blocks:
            counts = Counter(block.features(text))
            if not counts:
                continue
            indices = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
            weights = (1.0 + np.log(np.fromiter(counts.values(), dtype=float, count=len(counts)))) * block.idf[indices]
            weights /= np.sqrt(weights @ weights)
            scores += weights @ self.coef[indices + block.offset]
        return scores

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        logits = self.scale * (scores - scores.max(axis=-1, keepdims=True))
        exp = np.exp(logits)
        normalized: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
        return normalized

    def rank(self, text: str) -> list[tuple[str, float]]:
        probabilities = self.probabilities(self.scores(text))
        return sorted(zip(self.intents, probabilities.tolist(), strict=True), key=lambda pair: -pair[1])

    def decide(self, ranking: Sequence[tuple[str, float]]) -> str:
        intent, confidence = ranking[0]
        return OUT_OF_SCOPE if intent == OUT_OF_SCOPE or confidence < self.threshold else intent


Progress = Callable[[int, int], None]


def fit(
    texts: Sequence[str], labels: Sequence[str], *, progress: Progress | None = None, workers: int = 2
) -> tuple[IntentModel, Callable[[Sequence[str]], np.ndarray]]:
    """Train on (text, label) pairs. Returns the model (scale 1, threshold 0: calibrate next)
    and a reference scorer through scikit-learn, for checking the fast path."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    intents = tuple(sorted(set(labels)))
    if len(intents) < 2:
        raise ValueError("need examples of at least two intents to train")
    texts = [normalize(t) for t in texts]
    vectorizers = [TfidfVectorizer(sublinear_tf=True, dtype=np.float32, **options) for _, options in FEATURES]
    matrix = hstack([v.fit_transform(texts) for v in vectorizers]).tocsr()
    y = np.array([intents.index(label) for label in labels])

    def one(k: int) -> tuple[np.ndarray, float]:
        svm = LinearSVC(C=SVM_C).fit(matrix, (y == k).astype(int))
        return svm.coef_[0].astype(np.float32), float(svm.intercept_[0])

    results: list[tuple[np.ndarray, float]] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # liblinear releases the GIL
        for done, result in enumerate(pool.map(one, range(len(intents))), start=1):
            results.append(result)
            if progress:
                progress(done, len(intents))
    coef = np.ascontiguousarray(np.stack([c for c, _ in results], axis=1))
    intercept = np.array([b for _, b in results])
    blocks, offset = [], 0
    for (kind, _), vectorizer in zip(FEATURES, vectorizers, strict=True):
        blocks.append(
            Block(
                kind,
                {str(t): int(i) for t, i in vectorizer.vocabulary_.items()},
                vectorizer.idf_.astype(np.float64),
                offset,
            )
        )
        offset += len(vectorizer.vocabulary_)
    model = IntentModel(intents, blocks, coef, intercept)

    def reference(batch: Sequence[str]) -> np.ndarray:
        features = hstack([v.transform([normalize(t) for t in batch]) for v in vectorizers]).tocsr()
        scored: np.ndarray = features @ coef.astype(np.float64) + intercept
        return scored

    return model, reference


def calibrate(
    model: IntentModel,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    oos_recall: float = 0.6,
    max_rejected: float = 0.02,
) -> dict[str, Any]:
    """Fit the softmax scale and the out-of-scope threshold on held-out examples (never the
    training ones). The scale minimises the log-loss of the held-out labels the model knows.
    The threshold is the lowest that sends at least ``oos_recall`` of the held-out out-of-scope
    examples to out-of-scope; without such examples, the one that rejects at most
    ``max_rejected`` of the in-scope ones. Returns what it chose and why."""
    if not texts:
        return {"scale": model.scale, "threshold": model.threshold, "held_out": 0}
    scores = np.stack([model.scores(t) for t in texts])
    index = {intent: i for i, intent in enumerate(model.intents)}
    known = np.array([label in index for label in labels])
    target = np.array([index.get(label, 0) for label in labels])
    best_scale, best_loss = 1.0, np.inf
    if known.any():
        for scale in np.geomspace(
            0.5, 50, 50
        ):  # capped: a tiny held-out set that is all right must not make every answer 0.999
            model.scale = float(scale)
            p = model.probabilities(scores[known])[np.arange(int(known.sum())), target[known]]
            loss = float(-np.log(np.clip(p, 1e-12, None)).mean())
            if loss < best_loss:
                best_scale, best_loss = float(scale), loss
    model.scale = best_scale
    probabilities = model.probabilities(scores)
    top, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
    top_is_oos = np.array([model.intents[t] == OUT_OF_SCOPE for t in top])
    is_oos = np.array([label == OUT_OF_SCOPE for label in labels])
    candidates = np.unique(np.concatenate([[0.0], confidence]))
    if is_oos.any():
        rule = f"out-of-scope recall >= {oos_recall:.2f} on held-out"
        threshold = candidates[-1]
        for t in candidates:  # ascending: the first that reaches the recall is the mildest
            rejected = top_is_oos | (confidence < t)
            if rejected[is_oos].mean() >= oos_recall:
                threshold = t
                break
        threshold = float(threshold)
    else:
        rule = f"reject at most {max_rejected:.0%} of held-out in-scope"
        threshold = float(np.quantile(confidence[~is_oos], max_rejected))
    model.threshold = threshold
    return {"scale": round(best_scale, 4), "threshold": round(threshold, 4), "held_out": len(texts), "rule": rule}


def _whole_text(kind: str, vocabulary: dict[str, int]) -> Callable[[str], list[int]]:
    if kind == "stem":
        return lambda text: [vocabulary[t] for t in stems(text) if t in vocabulary]
    words = _WORD  # scikit-learn's word analyzer with token_pattern \b\w+\b and bigrams

    def features(text: str) -> list[int]:
        tokens = words.findall(text)
        found = [vocabulary[t] for t in tokens if t in vocabulary]
        found += [vocabulary[p] for p in (f"{a} {b}" for a, b in itertools.pairwise(tokens)) if p in vocabulary]
        return found

    return features


def _char_wb(word: str) -> list[str]:
    """scikit-learn's char_wb n-grams (2..5) of one word, padded with a space on each side."""
    padded = f" {word} "
    grams = []
    for n in range(2, 6):
        for start in range(len(padded) - n + 1):
            grams.append(padded[start : start + n])
        if len(padded) <= n:
            break
    return grams


def _per_word(vocabulary: dict[str, int], capacity: int = 50_000) -> Callable[[str], list[int]]:
    """char_wb n-grams never cross a space, so a text's terms are its words' terms: each known
    word is cut once and its indices memoised (bounded)."""
    cache: dict[str, list[int]] = {}

    def features(text: str) -> list[int]:
        found: list[int] = []
        for word in text.split():
            known = cache.get(word)
            if known is None:
                known = [vocabulary[g] for g in _char_wb(word) if g in vocabulary]
                if len(cache) >= capacity:
                    cache.clear()
                cache[word] = known
            found.extend(known)
        return found

    return features
