"""Routing: when the bot passes a conversation to people, to which queue, and whether people are there."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from seamline.handoff.routing import Hours, Routing
from seamline.shared.errors import ConfigError
from seamline.shared.settings import CONFIG_DIR

UTC = UTC


@pytest.fixture(scope="module")
def shipped() -> Routing:
    return Routing.load(CONFIG_DIR / "routing.yml")


def load(tmp_path: Path, text: str) -> Routing:
    path = tmp_path / "routing.yml"
    path.write_text(text, encoding="utf-8")
    return Routing.load(path)


def why(routing: Routing, text: str = "", *, intent=None, fallbacks=0, attributes=None):
    return routing.escalation(intent=intent, text=text, fallbacks=fallbacks, attributes=attributes or {})


# -- triggers ------------------------------------------------------------------------------------


def test_the_human_intent_asks_for_a_person(shipped):
    assert why(shipped, "can I talk to someone", intent="human_agent") == "the customer asked for a person"


@pytest.mark.parametrize("text", ["Позовите оператора", "ОПЕРАТОР!", "I need an agent please", "живой человек"])
def test_words_asking_for_a_person_escalate_whatever_the_intent(shipped, text):
    assert why(shipped, text, intent="greeting") == "the customer asked for a person"


def test_a_word_only_counts_whole(shipped):
    assert why(shipped, "agents of change", intent="greeting") is None  # "agents" is not "agent"


@pytest.mark.parametrize("intent", ["complaint", "payment_problem"])
def test_some_intents_always_go_to_people(shipped, intent):
    assert why(shipped, "whatever", intent=intent) == f"intent {intent} always goes to people"


def test_a_keyword_escalates(shipped):
    assert why(shipped, "У меня проблема с заказом", intent="order_status") == "keyword 'проблема'"


def test_fallbacks_in_a_row_escalate_from_the_configured_count(shipped):
    assert why(shipped, "asdf", fallbacks=2) is None
    assert why(shipped, "asdf", fallbacks=3) == "the bot did not understand 3 messages in a row"


def test_a_vip_customer_goes_to_people_at_once(shipped):
    assert why(shipped, "hello", intent="greeting", attributes={"vip": True}) == "VIP customer (vip)"
    assert why(shipped, "hello", intent="greeting", attributes={"vip": False}) is None


def test_a_plain_question_stays_with_the_bot(shipped):
    assert why(shipped, "where is my order 48213", intent="order_status", fallbacks=1) is None


def test_asking_for_a_person_wins_over_the_other_reasons(shipped):
    assert (
        why(shipped, "проблема, дайте оператора", intent="complaint", fallbacks=5, attributes={"vip": True})
        == "the customer asked for a person"
    )


def test_without_a_file_the_defaults_apply(tmp_path):
    routing = Routing.load(tmp_path / "missing.yml")
    assert routing.default_queue == "support" and routing.rules == ()
    assert why(routing, "x", intent="human_agent") and why(routing, "x", fallbacks=2)


# -- rules -----------------------------------------------------------------------------------------

RULES = """
default_queue: general
rules:
  - queue: vip
    attributes: {vip: true}
  - queue: sales
    intents: [product_availability]
  - queue: sales
    keywords: [buy, купить]
  - queue: telegram_ru
    channels: [telegram]
    languages: [ru]
  - queue: billing
    intents: [payment_problem]
    channels: [web]
"""


def route(routing, text="", *, intent=None, channel="web", language="en", attributes=None):
    return routing.route(intent=intent, text=text, channel=channel, language=language, attributes=attributes or {})


def test_the_first_matching_rule_wins(tmp_path):
    routing = load(tmp_path, RULES)
    assert route(routing, "I want to buy", intent="product_availability") == ("sales", "rule 2")
    assert route(routing, "I want to buy", intent="product_availability", attributes={"vip": True}) == ("vip", "rule 1")
    assert route(routing, "хочу купить", intent="greeting", channel="telegram", language="ru") == ("sales", "rule 3")


def test_channel_and_language_must_both_match(tmp_path):
    routing = load(tmp_path, RULES)
    assert route(routing, "привет", channel="telegram", language="ru") == ("telegram_ru", "rule 4")
    assert route(routing, "hello", channel="telegram", language="en") == ("general", "default queue")
    assert route(routing, "привет", channel="vk", language="ru") == ("general", "default queue")


def test_a_rule_naming_intent_and_channel_needs_both(tmp_path):
    routing = load(tmp_path, RULES)
    assert route(routing, "card declined", intent="payment_problem", channel="web") == ("billing", "rule 5")
    assert route(routing, "card declined", intent="payment_problem", channel="vk") == ("general", "default queue")


def test_attributes_are_compared_for_equality(tmp_path):
    routing = load(tmp_path, RULES)
    assert route(routing, "hi", attributes={"vip": "yes"}) == ("general", "default queue")
    assert route(routing, "hi", attributes={"vip": True}) == ("vip", "rule 1")


def test_no_rule_matching_goes_to_the_default_queue(tmp_path):
    assert route(load(tmp_path, RULES), "hello", intent="greeting") == ("general", "default queue")
    assert "general" in load(tmp_path, RULES).queue_names


def test_the_shipped_rules(shipped):
    assert route(shipped, "where is it", intent="order_status")[0] == "delivery"
    assert route(shipped, "how much is the price")[0] == "sales"
    assert route(shipped, "hello", intent="greeting") == ("support", "default queue")


# -- business hours ---------------------------------------------------------------------------------

HOURS = """
queues:
  support:
    timezone: Europe/Moscow
    hours: {mon-fri: "09:00-21:00", sat: "10:00-14:00, 15:00-18:00"}
  night:
    timezone: Europe/Moscow
    hours: {fri-mon: "22:00-23:59"}
  always: {}
"""


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_open_and_closed_at_given_utc_times(tmp_path):
    support = load(tmp_path, HOURS).hours("support")  # Moscow is UTC+3
    assert support.is_open(utc(2026, 11, 23, 6, 0))  # Monday 09:00 in Moscow
    assert not support.is_open(utc(2026, 11, 23, 5, 59))  # Monday 08:59
    assert support.is_open(utc(2026, 11, 23, 17, 59))  # Monday 20:59
    assert not support.is_open(utc(2026, 11, 23, 18, 0))  # Monday 21:00: the end is not included
    assert support.is_open(utc(2026, 11, 28, 8, 0))  # Saturday 11:00
    assert not support.is_open(utc(2026, 11, 28, 11, 30))  # Saturday 14:30: the lunch break
    assert not support.is_open(utc(2026, 11, 29, 9, 0))  # Sunday


def test_next_open_across_a_weekend(tmp_path):
    support = load(tmp_path, HOURS).hours("support")
    after_saturday = support.next_open(utc(2026, 11, 28, 16, 0))  # Saturday 19:00 in Moscow
    assert after_saturday == datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("Europe/Moscow"))  # Monday 09:00
    assert after_saturday.astimezone(UTC) == utc(2026, 11, 30, 6, 0)
    assert support.next_open(utc(2026, 11, 27, 19, 0)) == datetime(
        2026,
        11,
        28,
        10,
        0,  # Friday 22:00 → Sat 10:00
        tzinfo=ZoneInfo("Europe/Moscow"),
    )
    assert support.next_open(utc(2026, 11, 28, 11, 30)) == datetime(
        2026,
        11,
        28,
        15,
        0,  # after lunch
        tzinfo=ZoneInfo("Europe/Moscow"),
    )


def test_a_day_range_may_wrap_around_the_week(tmp_path):
    night = load(tmp_path, HOURS).hours("night")
    assert [bool(day) for day in night.week] == [True, False, False, False, True, True, True]


def test_a_queue_without_hours_is_always_open(tmp_path):
    routing = load(tmp_path, HOURS)
    for queue in ("always", "not-configured-at-all"):
        hours = routing.hours(queue)
        assert hours.is_open(utc(2026, 11, 29, 3, 0)) and hours.next_open(utc(2026, 11, 29, 3, 0)) is None


def test_the_shipped_support_hours(shipped):
    hours = shipped.hours("support")
    assert hours.timezone == "Europe/Moscow"
    assert hours.is_open(utc(2026, 11, 29, 8, 0)) and not hours.is_open(
        utc(2026, 11, 29, 16, 0)
    )  # Sunday 11:00 / 19:00
    assert shipped.hours("vip") == Hours("UTC")


# -- bad files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,problem",
    [
        ("rules: [unclosed", "is not valid YAML"),
        ("queues:\n  support: {timezone: Mars/Olympus}\n", "unknown time zone 'Mars/Olympus'"),
        ("queues:\n  support: {hours: {mon-fri: '9am-5pm'}}\n", "is not like 09:00-18:00"),
        ("queues:\n  support: {hours: {weekdays: '09:00-18:00'}}\n", "'weekdays' is not a day"),
        ("rules:\n  - intents: [greeting]\n", "rule 1 has no queue"),
        ("rules:\n  - {queue: x, intent: [greeting]}\n", "unknown keys ['intent']"),
        ("triggers: {keywords: problem}\n", "expected a list"),
        ("triggers: {fallbacks_in_a_row: many}\n", "many"),
    ],
)
def test_a_bad_file_is_a_config_error_naming_the_file(tmp_path, text, problem):
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, text)
    message = str(raised.value)
    assert str(tmp_path / "routing.yml") in message and problem in message


def test_the_waiting_and_presence_limits_are_read_and_checked(tmp_path, shipped):
    from datetime import timedelta

    assert (shipped.abandon_after, shipped.agent_offline_after) == (timedelta(hours=24), timedelta(minutes=5))
    custom = load(tmp_path, "abandon_after_minutes: 90\nagent_offline_after_minutes: 2\n")
    assert (custom.abandon_after, custom.agent_offline_after) == (timedelta(minutes=90), timedelta(minutes=2))
    for bad in ("agent_offline_after_minutes: 0", "agent_offline_after_minutes: soon", "abandon_after_minutes: -5"):
        with pytest.raises(ConfigError) as error:
            load(tmp_path, bad + "\n")
        assert bad.split(":")[0] in str(error.value) and "at least 1" in str(error.value)


def test_each_trigger_says_why_with_a_code_a_console_can_translate(tmp_path):
    routing = load(
        tmp_path,
        "triggers:\n  ask_for_human_words: [оператор]\n  always_to_people: [complaint]\n"
        "  keywords: [проблема]\n  fallbacks_in_a_row: 3\n  vip_attribute: vip\n",
    )
    cases = [
        (dict(intent=None, text="оператор, пожалуйста", fallbacks=0, attributes={}), "asked_for_human", {}),
        (dict(intent=None, text="hi", fallbacks=0, attributes={"vip": True}), "vip", {"attribute": "vip"}),
        (dict(intent="complaint", text="hi", fallbacks=0, attributes={}), "always_to_people", {"intent": "complaint"}),
        (dict(intent=None, text="у меня проблема", fallbacks=0, attributes={}), "keyword", {"keyword": "проблема"}),
        (dict(intent=None, text="hm", fallbacks=3, attributes={}), "fallbacks", {"count": 3}),
    ]
    for where, code, params in cases:
        reason = routing.escalation(**where)
        assert (reason.code, reason.params) == (code, params) and str(reason)
