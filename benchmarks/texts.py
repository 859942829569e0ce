"""What the benchmark customers say, in turn: the same mix for every channel, so figures compare."""

TEXTS = [
    "hello",
    "where is my order",
    "48213",
    "how much is delivery",
    "спасибо",
    "когда вы работаете",
    "хочу вернуть товар",
    "thanks!",
    "what's the weather like",
    "оплата не проходит",
]
