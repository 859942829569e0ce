"""Entities with normalized values: phones, e-mails, order numbers, dates, money, custom patterns."""

from __future__ import annotations

import datetime
import itertools

import pytest

from seamline.nlu.entities import PatternEntities

MONDAY = datetime.date(2026, 11, 23)
ENTITIES = PatternEntities(today=lambda: MONDAY)


def found(text: str, extractor: PatternEntities = ENTITIES) -> list[tuple[str, str]]:
    return [(e.type, e.value) for e in extractor.extract(text)]


def values(text: str, kind: str, extractor: PatternEntities = ENTITIES) -> list[str]:
    return [value for type_, value in found(text, extractor) if type_ == kind]


@pytest.mark.parametrize(
    "text",
    [
        "позвоните мне +7 (916) 123-45-67 пожалуйста",
        "тел. 8 916 123 45 67",
        "мой номер 89161234567",
        "call me at +7 916 123-45-67",
    ],
)
def test_russian_phones_come_out_in_e164(text):
    assert values(text, "phone") == ["+79161234567"]


def test_foreign_and_regional_phones():
    assert values("call +1 415-555-2671 tonight", "phone") == ["+14155552671"]
    assert values("call (415) 555-2671", "phone", PatternEntities(default_region="US")) == ["+14155552671"]


def test_phone_digits_are_not_an_order_number_but_an_order_next_to_a_phone_is():
    assert found("89161234567") == [("phone", "+79161234567")]
    assert found("заказ 48213, тел +7 916 123-45-67") == [("order_number", "48213"), ("phone", "+79161234567")]


def test_a_number_marked_with_a_number_sign_is_an_order_even_if_it_looks_like_a_phone():
    assert found("заказ №9161234567") == [("order_number", "9161234567")]


def test_email_inside_russian_text_is_lowercased():
    (entity,) = ENTITIES.extract("напишите на Ivan.Petrov@Mail.RU, спасибо")
    assert (entity.type, entity.value, entity.text) == ("email", "ivan.petrov@mail.ru", "Ivan.Petrov@Mail.RU")


@pytest.mark.parametrize(
    "text, number",
    [
        ("заказ №48213 где", "48213"),
        ("where is order #123456?", "123456"),
        ("заказ 7712345 не пришёл", "7712345"),
    ],
)
def test_order_numbers(text, number):
    assert found(text) == [("order_number", number)]


def test_a_custom_order_pattern_is_used():
    extractor = PatternEntities(order_pattern=r"\b([A-Z]{2}-\d{4})\b")
    assert values("status of AB-1234 please", "order_number", extractor) == ["AB-1234"]


@pytest.mark.parametrize(
    "text, day",
    [
        ("сегодня", "2026-11-23"),
        ("завтра", "2026-11-24"),
        ("послезавтра", "2026-11-25"),
        ("вчера", "2026-11-22"),
        ("today", "2026-11-23"),
        ("tomorrow", "2026-11-24"),
        ("the day after tomorrow", "2026-11-25"),
        ("yesterday", "2026-11-22"),
    ],
)
def test_relative_days(text, day):
    assert values(f"доставка {text} ok", "date") == [day]


@pytest.mark.parametrize(
    "text, day",
    [
        ("через 3 дня", "2026-11-26"),
        ("через два дня", "2026-11-25"),
        ("через неделю", "2026-11-30"),
        ("in 3 days", "2026-11-26"),
        ("in a week", "2026-11-30"),
        ("in two weeks", "2026-12-07"),
        ("через месяц", "2026-12-23"),
    ],
)
def test_dates_some_time_from_today(text, day):
    assert values(text, "date") == [day]


@pytest.mark.parametrize(
    "text, day",
    [
        ("15 марта", "2027-03-15"),
        ("15-го марта", "2027-03-15"),
        ("5 мая", "2027-05-05"),
        ("1 янв", "2027-01-01"),
        ("30 ноября", "2026-11-30"),
        ("23 ноября", "2026-11-23"),
        ("1 января 2027", "2027-01-01"),
        ("March 15", "2027-03-15"),
        ("15 March", "2027-03-15"),
        ("March 15th, 2027", "2027-03-15"),
        ("dec 31", "2026-12-31"),
        ("15 сент", "2027-09-15"),
    ],
)
def test_dates_with_month_names_mean_the_next_such_day(text, day):
    assert values(f"привезите {text}, пожалуйста", "date") == [day]


@pytest.mark.parametrize(
    "text, day",
    [
        ("15.03", "2027-03-15"),
        ("15.03.2027", "2027-03-15"),
        ("15/03/2027", "2027-03-15"),
        ("2027-03-15", "2027-03-15"),
        ("01.12", "2026-12-01"),
        ("29.02", "2028-02-29"),
    ],
)
def test_numeric_dates_are_day_first(text, day):
    assert values(f"до {text}", "date") == [day]


@pytest.mark.parametrize("text", ["31.02", "31.02.2027", "2027-13-01", "рейтинг 4.5 звезды"])
def test_impossible_dates_and_decimals_are_not_dates_nor_orders(text):
    assert found(text) == []


@pytest.mark.parametrize(
    "text, day",
    [
        ("в понедельник", "2026-11-30"),
        ("во вторник", "2026-11-24"),
        ("в пятницу", "2026-11-27"),
        ("on monday", "2026-11-30"),
        ("next friday", "2026-11-27"),
        ("в следующую среду", "2026-11-25"),
    ],
)
def test_weekdays_mean_the_next_such_day_after_today(text, day):
    assert values(text, "date") == [day]


@pytest.mark.parametrize(
    "text, money",
    [
        ("1500 руб", "1500 RUB"),
        ("1 500 ₽", "1500 RUB"),
        ("1500р", "1500 RUB"),
        ("1500 рублей", "1500 RUB"),
        ("1 500,50 руб", "1500.50 RUB"),
        ("2 тыс руб", "2000 RUB"),
        ("2к руб", "2000 RUB"),
        ("$20", "20 USD"),
        ("$20.50", "20.50 USD"),
        ("$20.5", "20.50 USD"),
        ("20 dollars", "20 USD"),
        ("20 usd", "20 USD"),
        ("100 долларов", "100 USD"),
        ("1,500.00 USD", "1500 USD"),
        ("€15", "15 EUR"),
        ("15 евро", "15 EUR"),
        ("15 EUR", "15 EUR"),
    ],
)
def test_money_is_amount_and_iso_currency(text, money):
    assert found(f"заплатил {text} вчера")[0] == ("money", money)


def test_a_bare_number_is_not_money():
    assert values("заплатил 1500 вчера", "money") == []
    assert values("I have 2 kids", "money") == []


def test_lookups_are_whole_words_any_case_and_e_yo_insensitive_with_synonyms():
    extractor = PatternEntities(
        lookups={"product": ["iPhone 15", "айфон 15", "ёлка"]}, synonyms={"Айфон 15": "iPhone 15"}
    )
    (entity,) = extractor.extract("хочу айфон 15 срочно")
    assert (entity.type, entity.value, entity.text, entity.start, entity.end) == (
        "product",
        "iPhone 15",
        "айфон 15",
        5,
        13,
    )
    assert values("а IPHONE   15 есть?", "product", extractor) == ["iPhone 15"]
    assert values("Искусственная ЕЛКА", "product", extractor) == ["ёлка"]
    assert values("айфон 150", "product", extractor) == []
    assert values("ёлками", "product", extractor) == []


def test_custom_regex_entities_pass_through_synonyms_and_beat_order_numbers():
    extractor = PatternEntities(regexes={"sku": [r"SKU-\d+"]}, synonyms={"sku-000123": "SKU-123"})
    assert found("артикул SKU-000123", extractor) == [("sku", "SKU-123")]


def test_a_message_with_everything_is_sorted_and_non_overlapping():
    text = "заказ №123456 на 1 500 руб привезти 15.03.2027 или завтра, тел 89161234567, почта a.b@mail.ru"
    entities = ENTITIES.extract(text)
    assert [(e.type, e.value) for e in entities] == [
        ("order_number", "123456"),
        ("money", "1500 RUB"),
        ("date", "2027-03-15"),
        ("date", "2026-11-24"),
        ("phone", "+79161234567"),
        ("email", "a.b@mail.ru"),
    ]
    assert all(e.text == text[e.start : e.end] for e in entities)
    assert all(a.end <= b.start for a, b in itertools.pairwise(entities))


def test_amount_and_date_digits_are_not_order_numbers():
    assert found("оплатил 15000 руб 2027-03-15") == [("money", "15000 RUB"), ("date", "2027-03-15")]


def test_nothing_in_plain_chat():
    assert ENTITIES.extract("привет, как дела? в магазине всё хорошо") == ()


def test_today_defaults_to_the_real_date():
    before = datetime.date.today()
    tomorrow = values("завтра", "date", PatternEntities())
    after = datetime.date.today()
    assert tomorrow[0] in {(day + datetime.timedelta(days=1)).isoformat() for day in (before, after)}
