"""Which passwords an agent may choose: long enough, not common, not a keyboard walk or a repetition,
not their own e-mail address.

The console guards customers' conversations, and its login throttle (handoff/login.py) lets a
stranger try a handful of passwords per address: those guesses are the most common passwords first.
A list of them (``common_passwords.txt``, shipped with the package) plus a few structural checks
refuses what such a list tries, without a large dependency (zxcvbn's data would be most of it).
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache
from pathlib import Path

MIN_LENGTH, MAX_LENGTH = 10, 1024
# Rows of the keyboards our agents type on (Latin and Russian), and the digit row.
ROWS = (
    "1234567890",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "йцукенгшщзхъ",
    "фывапролджэ",
    "ячсмитьбю",
    "qazwsxedcrfvtgbyhnujmikolp",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
)
LEET = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e", "$": "s", "5": "s", "7": "t"})
EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")  # digits and symbols around a word: "Password2024!"


@lru_cache(maxsize=1)
def common() -> frozenset[str]:
    path = Path(__file__).with_name("common_passwords.txt")
    return frozenset(
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    )


def problem(password: str, email: str = "") -> str | None:
    """Why ``password`` is refused (a sentence for the person choosing it), or None when it will do."""
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"the password must have at most {MAX_LENGTH} characters"
    lower = password.lower()
    core = EDGES.sub("", lower)
    if len(set(lower)) < 5 or _repeats(lower) or (len(core) >= 4 and _repeats(core)):
        return "the password is too repetitive: use a few unrelated words"
    if _sequence(lower):
        return "the password is a sequence of keys or letters: use a few unrelated words"
    words = common()
    if any(w in words for w in (lower, core, lower.translate(LEET), core.translate(LEET)) if w):
        return "the password is one of the most common ones: use a few unrelated words"
    local, _, domain = email.strip().lower().partition("@")
    parts = [p for p in (local, domain.split(".")[0]) if len(p) >= 4]
    if any(p in lower for p in parts):
        return "the password must not contain your e-mail address"
    return None


def _repeats(text: str) -> bool:
    """The same short piece over and over ("abcabcabcabc", "2024202420")."""
    return any(text == (text[:n] * (len(text) // n + 1))[: len(text)] for n in range(1, len(text) // 2 + 1))


def _sequence(text: str) -> bool:
    """All of it along the alphabet, the digits or a keyboard row, either way ("abcdefghij", "0987654321",
    "qwertyuiopasdf")."""
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(text)}
    if steps in ({1}, {-1}):
        return True
    stripped = re.sub(r"[\W_]", "", text)
    return len(stripped) >= 6 and any(
        stripped in row * 2 or stripped in (row * 2)[::-1] for row in (*ROWS, "".join(ROWS[:4]))
    )
