"""The first NLU: intents in Russian and English, out-of-scope, language, order numbers."""

from __future__ import annotations

import csv
from pathlib import Path

from seamline.nlu.entities import PatternEntities
from seamline.nlu.language import detect
from seamline.nlu.parse import OUT_OF_SCOPE

CHECK = Path(__file__).resolve().parent.parent / "fixtures" / "nlu_check.csv"


def test_phrases_it_was_not_trained_on_are_mostly_understood(understanding):
    # Written for this test, not taken from config/intents: a small, honest generalisation check.
    rows = list(csv.DictReader(CHECK.open(encoding="utf-8")))
    right = [row for row in rows if understanding.parse(row["text"]).intent == row["intent"]]
    wrong = [(row["text"], row["intent"], understanding.parse(row["text"]).intent) for row in rows if row not in right]
    assert len(right) / len(rows) >= 0.85, wrong


def test_a_question_outside_the_shop_is_out_of_scope_not_the_nearest_intent(understanding):
    for text in ("what's the capital of australia", "расскажи анекдот про програмистов"):
        assert understanding.parse(text).intent == OUT_OF_SCOPE


def test_the_ranking_is_ordered_and_confidences_are_probabilities(understanding):
    parse = understanding.parse("где мой заказ")
    confidences = [c for _, c in parse.ranking]
    assert parse.intent == "order_status" and confidences == sorted(confidences, reverse=True)
    assert all(0 <= c <= 1 for c in confidences) and sum(confidences) <= 1.0001


def test_a_button_payload_names_the_intent_directly(understanding):
    parse = understanding.parse("Talk to a person", payload="/human_agent")
    assert (parse.intent, parse.confidence) == ("human_agent", 1.0)
    assert understanding.parse("blah", payload="/no_such_intent").intent == OUT_OF_SCOPE


def test_language_is_detected_per_message():
    assert detect("Где мой заказ?") == "ru"
    assert detect("where is my order") == "en"
    assert detect("статус order pls") == "ru"  # mixed, as Russian speakers write
    assert detect("please change the delivery address for Дмитрий") == "en"
    assert detect("12345 !!!") is None


def test_order_numbers_are_found_in_either_language():
    entities = PatternEntities()
    assert [e.value for e in entities.extract("заказ №48213 где")] == ["48213"]
    assert [e.value for e in entities.extract("where is order #123456?")] == ["123456"]
    assert [e.type for e in entities.extract("I need it in 2 days")] == ["date"]  # not an order number


def test_the_fast_scores_equal_scikit_learns():
    from seamline.nlu.classifier import fit

    texts = ["where is my order", "где мой заказ", "I want a refund", "верните деньги", "hello", "привет"] * 3
    labels = ["order_status", "order_status", "return_item", "return_item", "greet", "greet"] * 3
    model, reference = fit(texts, labels)
    probes = ["where is my order 12345", "Здравствуйте, хочу вернуть товар", "zzzz", "оператор!!!"]
    expected = reference(probes)
    for row, text in zip(expected, probes, strict=True):
        assert abs(model.scores(text) - row).max() < 1e-5


def test_commands_name_their_intent_and_start_is_a_greeting(understanding):
    assert understanding.parse("/start promo-1", payload="/start promo-1").intent == "greet"
    parse = understanding.parse("/order_status 48213", payload="/order_status 48213")
    assert (parse.intent, parse.entity("order_number")) == ("order_status", "48213")
