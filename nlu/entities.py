"""Entities found by patterns in Russian and English messages, with normalized values.

What `PatternEntities.extract` recognizes, and the `value` it gives:

- ``phone``: valid phone numbers, as E.164 ("+7 (916) 123-45-67", "8 916 123 45 67" -> "+79161234567").
  Found by the ``phonenumbers`` library; numbers without a country code are read in ``default_region``.
  A number written right after "№" or "#" is taken for an order number, not a phone.
- ``email``: e-mail addresses, lowercased.
- ``order_number``: group 1 of ``order_pattern`` ("заказ №48213" -> "48213").
- ``date``: ISO "YYYY-MM-DD", computed from ``today()``: сегодня/завтра/послезавтра/вчера and
  today/tomorrow/day after tomorrow/yesterday; "через 3 дня", "через неделю", "in 3 days", "in a week";
  "15 марта", "15-го марта", "1 января 2027", "March 15th, 2027", "15 Mar"; "15.03", "15.03.2027",
  "15/03/2027" (day first); "2027-03-15"; weekdays with a preposition ("в пятницу", "on monday",
  "next friday") mean the first such day after today. A day and month without a year mean their next
  occurrence, today or later. Impossible dates ("31.02") are not dates.
- ``money``: "<amount> <ISO code>", whole amounts as integers, others with two decimals
  ("1 500 ₽" -> "1500 RUB", "$20.5" -> "20.50 USD", "2 тыс руб" -> "2000 RUB"). A number needs a
  currency next to it to be money.
- custom ``regexes`` ({type: [pattern, ...]}): the matched text. ``lookups`` ({type: [value, ...]}):
  whole words or phrases, case- and ё/е-insensitive, valued as the lookup element is written. The value
  of both passes through ``synonyms`` ({variant: canonical}, keys matched case-insensitively).

Overlaps: the result is sorted by start and no two entities overlap. Candidates are taken greedily,
order numbers last: every other entity is considered by earliest start, then longest span, then kind
(phone, email, money, date, then custom regexes and lookups in the order given), and kept if it overlaps
nothing kept so far. An order number is then kept only if it overlaps no kept entity and no date-shaped
text, so the digits of a phone, an amount or a date (even an impossible one) never come out as an order.
"""

from __future__ import annotations

import datetime
import re
from calendar import monthrange
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import NamedTuple

import phonenumbers

from seamline.nlu.parse import Entity

DEFAULT_ORDER_PATTERN = r"(?<![\d+])(?:№\s?|#\s?)?(\d{4,12})(?!\d)"

_NO_LETTER_BEFORE = r"(?<![^\W\d_])"
_NO_LETTER_AFTER = r"(?![^\W\d_])"
_LETTERS = re.compile(r"[^\W\d_]+")
_DIGIT = re.compile(r"\d")


class _Scan(NamedTuple):
    """A message and a cheap first look at it, so that patterns that cannot match it are not run."""

    text: str
    words: frozenset[str]  # its runs of letters, folded
    digits: int


def _scan(text: str) -> _Scan:
    return _Scan(text, frozenset(_LETTERS.findall(text.lower().replace("ё", "е"))), len(_DIGIT.findall(text)))


class _Found(NamedTuple):
    """A candidate entity, or (with value None) text shaped like one that must not become an order."""

    type: str
    value: str | None
    text: str
    start: int
    end: int


def _alternation(words: Iterable[str]) -> str:
    """A regex alternation of literal words, longest first, any whitespace between words."""
    ordered = sorted(set(words), key=len, reverse=True)
    return "|".join(r"\s+".join(map(re.escape, word.split())) for word in ordered)


def _fold(text: str) -> str:
    """The form used to compare lookup values and synonym keys: lowercase, ё as е, single spaces."""
    return " ".join(text.lower().replace("ё", "е").split())


# ---------------------------------------------------------------------------------------------- dates

_MONTH_WORDS = {
    1: "январь января январе янв january jan",
    2: "февраль февраля феврале фев февр february feb",
    3: "март марта марте мар march mar",
    4: "апрель апреля апреле апр april apr",
    5: "май мая мае may",
    6: "июнь июня июне июн june jun",
    7: "июль июля июле июл july jul",
    8: "август августа августе авг august aug",
    9: "сентябрь сентября сентябре сен сент september sep sept",
    10: "октябрь октября октябре окт october oct",
    11: "ноябрь ноября ноябре ноя нояб november nov",
    12: "декабрь декабря декабре дек december dec",
}
_MONTHS = {word: number for number, words in _MONTH_WORDS.items() for word in words.split()}

_WEEKDAY_WORDS = {
    0: "понедельник понедельника понедельнику monday mon",
    1: "вторник вторника вторнику tuesday tue tues",
    2: "среда среду среды wednesday wed",
    3: "четверг четверга четвергу thursday thu thur thurs",
    4: "пятница пятницу пятницы пятнице friday fri",
    5: "суббота субботу субботы субботе saturday sat",
    6: "воскресенье воскресенья воскресенью sunday sun",
}
_WEEKDAYS = {word: number for number, words in _WEEKDAY_WORDS.items() for word in words.split()}
_WEEKDAY_PREPOSITIONS = (
    "в",
    "во",
    "на",
    "к",
    "ко",
    "до",
    "с",
    "со",
    "по",
    "в следующий",
    "в следующую",
    "в следующее",
    "в этот",
    "в эту",
    "в это",
    "on",
    "next",
    "this",
    "by",
    "until",
    "till",
    "on next",
    "this coming",
)

_DAY_SHIFTS = {
    "сегодня": 0,
    "завтра": 1,
    "послезавтра": 2,
    "вчера": -1,
    "позавчера": -2,
    "today": 0,
    "tomorrow": 1,
    "day after tomorrow": 2,
    "the day after tomorrow": 2,
    "yesterday": -1,
    "day before yesterday": -2,
    "the day before yesterday": -2,
}
_COUNTS = {
    "один": 1,
    "одну": 1,
    "одна": 1,
    "два": 2,
    "две": 2,
    "пару": 2,
    "три": 3,
    "четыре": 4,
    "пять": 5,
    "шесть": 6,
    "семь": 7,
    "восемь": 8,
    "девять": 9,
    "десять": 10,
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
_UNITS = {"д": "day", "day": "day", "недел": "week", "week": "week", "месяц": "month", "month": "month"}

_MONTH = rf"{_NO_LETTER_BEFORE}(?P<month>[^\W\d_]{{3,9}}){_NO_LETTER_AFTER}"  # any word; checked in _MONTHS
_YEAR = r"(?:,?\s*(?P<year>(?:19|20)\d\d)(?!\d))?"
_ORDINAL = rf"(?:(?:-?(?:го|е|ое)|st|nd|rd|th){_NO_LETTER_AFTER})"
_COUNT = rf"(?:(?P<count>\d{{1,3}}|{_alternation(_COUNTS)})\s+)"

_ISO_DATE = re.compile(r"(?<![\d.])(?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d)(?![\d])")
_NUMERIC_DATE = re.compile(
    r"(?<![\w.,/])(?P<day>\d{1,2})(?P<sep>[./])(?P<month>\d\d|\d(?=(?P=sep)\d))"  # "4.5" is a number
    r"(?:(?P=sep)(?P<year>\d{4}|\d\d))?(?![.,/]?\d)"
)
_DAY_MONTH = re.compile(rf"(?<!\d)(?P<day>\d{{1,2}}){_ORDINAL}?\s*(?:of\s+)?{_MONTH}{_YEAR}", re.IGNORECASE)
_MONTH_DAY = re.compile(rf"{_MONTH}\.?\s*(?P<day>\d{{1,2}})(?:{_ORDINAL}|(?!\d)){_YEAR}", re.IGNORECASE)
_DAY_SHIFT = re.compile(rf"{_NO_LETTER_BEFORE}(?P<word>{_alternation(_DAY_SHIFTS)}){_NO_LETTER_AFTER}", re.IGNORECASE)
_RU_IN = re.compile(
    rf"{_NO_LETTER_BEFORE}через\s+{_COUNT}?(?P<unit>день|дн(?:я|ей)|недел(?:ю|и|ь)|"
    rf"месяц(?:а|ев)?){_NO_LETTER_AFTER}",
    re.IGNORECASE,
)
_EN_IN = re.compile(rf"{_NO_LETTER_BEFORE}in\s+{_COUNT}(?P<unit>days?|weeks?|months?){_NO_LETTER_AFTER}", re.IGNORECASE)
_WEEKDAY = re.compile(
    rf"{_NO_LETTER_BEFORE}(?:{_alternation(_WEEKDAY_PREPOSITIONS)})\s+"
    rf"(?P<weekday>{_alternation(_WEEKDAYS)}){_NO_LETTER_AFTER}",
    re.IGNORECASE,
)


def _checked(year: int, month: int, day: int) -> datetime.date | None:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def _next_occurrence(today: datetime.date, month: int, day: int) -> datetime.date | None:
    """The first date with this month and day that is today or later (29 February waits for a leap year)."""
    for year in range(today.year, today.year + 9):
        found = _checked(year, month, day)
        if found is not None and found >= today:
            return found
    return None


def _calendar_date(today: datetime.date, match: re.Match[str]) -> datetime.date | None:
    month = match["month"]
    month = int(month) if month.isdigit() else _MONTHS[month.lower()]
    day, year = int(match["day"]), match["year"]
    if year is None:
        return _next_occurrence(today, month, day)
    return _checked(int(year) + (2000 if len(year) == 2 else 0), month, day)


def _add_months(start: datetime.date, months: int) -> datetime.date:
    year, month = divmod(start.month - 1 + months, 12)
    year += start.year
    return start.replace(year=year, month=month + 1, day=min(start.day, monthrange(year, month + 1)[1]))


def _shifted_date(today: datetime.date, match: re.Match[str]) -> datetime.date:
    count = match["count"]
    count = 1 if count is None else int(count) if count.isdigit() else _COUNTS[count.lower()]
    unit = match["unit"].lower()
    unit = next(name for prefix, name in _UNITS.items() if unit.startswith(prefix))
    if unit == "month":
        return _add_months(today, count)
    return today + datetime.timedelta(days=count * (7 if unit == "week" else 1))


def _weekday_date(today: datetime.date, match: re.Match[str]) -> datetime.date:
    ahead = (_WEEKDAYS[match["weekday"].lower()] - today.weekday()) % 7 or 7
    return today + datetime.timedelta(days=ahead)


def _day_shift_date(today: datetime.date, match: re.Match[str]) -> datetime.date:
    return today + datetime.timedelta(days=_DAY_SHIFTS[" ".join(match["word"].lower().split())])


def _names_a_month(match: re.Match[str]) -> bool:
    """Month names are matched as any word, which is much faster than an alternation of them all."""
    month = match.groupdict().get("month")
    return month is None or month.isdigit() or month.lower() in _MONTHS


class _DateForm(NamedTuple):
    pattern: re.Pattern[str]
    to_date: Callable[[datetime.date, re.Match[str]], datetime.date | None]
    needs_digits: bool
    needs_one_of: frozenset[str] | None  # words the text must contain for the pattern to be worth running


_DATE_FORMS = (
    _DateForm(_ISO_DATE, _calendar_date, True, None),
    _DateForm(_NUMERIC_DATE, _calendar_date, True, None),
    _DateForm(_DAY_MONTH, _calendar_date, True, frozenset(_MONTHS)),
    _DateForm(_MONTH_DAY, _calendar_date, True, frozenset(_MONTHS)),
    _DateForm(_DAY_SHIFT, _day_shift_date, False, frozenset(words.split()[-1] for words in _DAY_SHIFTS)),
    _DateForm(_RU_IN, _shifted_date, False, frozenset({"через"})),
    _DateForm(_EN_IN, _shifted_date, False, frozenset({"in"})),
    _DateForm(_WEEKDAY, _weekday_date, False, frozenset(_WEEKDAYS)),
)


def _dates(scan: _Scan, today: Callable[[], datetime.date]) -> Iterator[_Found]:
    day = None
    for form in _DATE_FORMS:
        if (form.needs_digits and not scan.digits) or (
            form.needs_one_of is not None and form.needs_one_of.isdisjoint(scan.words)
        ):
            continue
        day = day or today()
        for match in form.pattern.finditer(scan.text):
            if not _names_a_month(match):
                continue
            found = form.to_date(day, match)
            value = found.isoformat() if found is not None else None
            yield _Found("date", value, match[0], match.start(), match.end())


# ---------------------------------------------------------------------------------------------- money

_CURRENCIES = {  # ISO code: its symbol and the words that may follow an amount; the code itself may too
    "RUB": ("₽", "руб рубль рубля рублей рубли р rur ruble rubles rouble roubles"),
    "USD": ("$", "dollar dollars buck bucks долл доллар доллара долларов доллары бакс бакса баксов"),
    "EUR": ("€", "euro euros евро"),
    "GBP": ("£", ""),
    "CNY": ("", "yuan юань юаня юаней"),
    "KZT": ("₸", "тенге"),
    "UAH": ("₴", "грн гривна гривны гривен"),
    "BYN": ("", ""),
}
_CURRENCY_SYMBOLS = {symbol: iso for iso, (symbol, _) in _CURRENCIES.items() if symbol}
_CURRENCY_CODES = {iso.lower(): iso for iso in _CURRENCIES}
_CURRENCY_WORDS = {word: iso for iso, (_, words) in _CURRENCIES.items() for word in words.split()}
_CURRENCY_NAMES = {**_CURRENCY_SYMBOLS, **_CURRENCY_CODES, **_CURRENCY_WORDS}
_MULTIPLIERS = {
    "k": 1000,
    "к": 1000,
    "тыс": 1000,
    "тысяч": 1000,
    "тысяча": 1000,
    "тысячи": 1000,
    "thousand": 1000,
    "млн": 10**6,
    "mln": 10**6,
    "million": 10**6,
    "миллион": 10**6,
    "миллиона": 10**6,
    "миллионов": 10**6,
}

_SYMBOL = f"[{''.join(_CURRENCY_SYMBOLS)}]"
_AMOUNT = (
    r"(?<![\d.,])(?P<whole>\d{1,3}(?:[ \u00a0\u202f,.]\d{3})+|\d+)(?:[.,](?P<cents>\d{1,2}))?(?!\d)"
    rf"(?:\s?(?P<multiplier>{_alternation(_MULTIPLIERS)})\.?{_NO_LETTER_AFTER})?"
)
_MONEY_FORMS = (  # "$20", "USD 20"; "20 $", "1 500 руб", "20 usd"
    re.compile(
        rf"(?P<currency>{_SYMBOL}|{_NO_LETTER_BEFORE}(?:{_alternation(_CURRENCY_CODES)}))\s?{_AMOUNT}", re.IGNORECASE
    ),
    re.compile(
        rf"{_AMOUNT}[ \u00a0\u202f]?(?P<currency>{_SYMBOL}|"
        rf"(?:{_alternation([*_CURRENCY_CODES, *_CURRENCY_WORDS])}){_NO_LETTER_AFTER})",
        re.IGNORECASE,
    ),
)


def _amount(match: re.Match[str]) -> str:
    whole = re.sub(r"\D", "", match["whole"])
    amount = Decimal(f"{whole}.{match['cents'] or 0}")
    if match["multiplier"]:
        amount *= _MULTIPLIERS[match["multiplier"].lower()]
    return str(int(amount)) if amount == amount.to_integral_value() else f"{amount:.2f}"


def _money(scan: _Scan) -> Iterator[_Found]:
    if not scan.digits or (
        scan.words.isdisjoint(_CURRENCY_NAMES) and not any(symbol in scan.text for symbol in _CURRENCY_SYMBOLS)
    ):
        return
    for pattern in _MONEY_FORMS:
        for match in pattern.finditer(scan.text):
            iso = _CURRENCY_NAMES[match["currency"].lower()]
            yield _Found("money", f"{_amount(match)} {iso}", match[0], match.start(), match.end())


# ----------------------------------------------------------------------------------- phones and e-mail

_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@(?:[\w-]+\.)+[^\W\d_]{2,}(?![\w-])")
_PHONE_LIKE = re.compile(r"\d(?:\W{0,4}\d){6}")  # seven digits with only separators between them
_ORDER_MARK = re.compile(r"[№#]\s?$")


def _emails(scan: _Scan) -> Iterator[_Found]:
    if "@" not in scan.text:
        return
    for match in _EMAIL.finditer(scan.text):
        yield _Found("email", match[0].lower(), match[0], match.start(), match.end())


def _phones(scan: _Scan, region: str) -> Iterator[_Found]:
    text = scan.text
    if scan.digits < 7 or not _PHONE_LIKE.search(text):
        return
    for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        if _ORDER_MARK.search(text, max(0, match.start - 2), match.start):
            continue
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        yield _Found("phone", e164, match.raw_string, match.start, match.end)


# ------------------------------------------------------------------------------------ custom entities


class _Lookup(NamedTuple):
    type: str
    pattern: re.Pattern[str]
    written: dict[str, str]  # folded value -> the value as written
    needs_one_of: frozenset[str] | None  # a word every match contains; None when a value has no letters


def _lookup(name: str, values: Sequence[str]) -> _Lookup:
    """One regex for a lookup: whole words, any case, ё and е alike, any whitespace between words."""

    def loose(value: str) -> str:
        return r"\s+".join("".join("[её]" if ch == "е" else re.escape(ch) for ch in word) for word in value.split())

    written = {_fold(v): v for v in reversed(values) if v.strip()}
    alternatives = sorted(written, key=len, reverse=True)
    pattern = re.compile(rf"(?<!\w)(?:{'|'.join(map(loose, alternatives))})(?!\w)", re.IGNORECASE)
    first_words = [_LETTERS.findall(value)[:1] for value in written]
    needs = None if not all(first_words) else frozenset(words[0] for words in first_words)
    return _Lookup(name, pattern, written, needs)


def _resolve(found: list[_Found], kinds: Mapping[str, int]) -> tuple[Entity, ...]:
    """Non-overlapping entities sorted by start; see the module docstring for who wins."""

    def overlaps(a: _Found, b: _Found) -> bool:
        return a.start < b.end and b.start < a.end

    not_orders = [f for f in found if f.value is None]  # date-shaped text that is no real date
    candidates = sorted(
        (f for f in found if f.value is not None),
        key=lambda f: (f.type == "order_number", f.start, f.start - f.end, kinds.get(f.type, len(kinds))),
    )
    kept: list[_Found] = []
    for candidate in candidates:
        blockers = kept + not_orders if candidate.type == "order_number" else kept
        if not any(overlaps(candidate, other) for other in blockers):
            kept.append(candidate)
    kept.sort(key=lambda f: f.start)
    return tuple(Entity(f.type, f.value, f.text, f.start, f.end) for f in kept if f.value is not None)


class PatternEntities:
    """Finds the entities described in the module docstring; everything is compiled once, here."""

    def __init__(
        self,
        *,
        order_pattern: str = DEFAULT_ORDER_PATTERN,
        default_region: str = "RU",
        regexes: Mapping[str, Sequence[str]] = {},
        lookups: Mapping[str, Sequence[str]] = {},
        synonyms: Mapping[str, str] = {},
        today: Callable[[], datetime.date] | None = None,
    ) -> None:
        self._order = re.compile(order_pattern)
        self._region = default_region
        self._today = today or datetime.date.today
        self._synonyms = {_fold(variant): canonical for variant, canonical in synonyms.items()}
        self._regexes = [(name, re.compile(p)) for name, patterns in regexes.items() for p in patterns]
        self._lookups = [_lookup(name, values) for name, values in lookups.items() if any(map(str.strip, values))]
        kinds = dict.fromkeys(["phone", "email", "money", "date", *regexes, *lookups])
        self._kinds = {kind: rank for rank, kind in enumerate(kinds)}

    def extract(self, text: str) -> tuple[Entity, ...]:
        """The entities in text, sorted by start and non-overlapping."""
        scan = _scan(text)
        found = [
            *_phones(scan, self._region),
            *_emails(scan),
            *_money(scan),
            *_dates(scan, self._today),
            *self._custom(scan),
            *self._orders(text),
        ]
        return _resolve(found, self._kinds)

    def _orders(self, text: str) -> Iterator[_Found]:
        for match in self._order.finditer(text):
            value = match.group(1) if match.groups() else match.group(0)
            yield _Found("order_number", value, match[0], match.start(), match.end())

    def _custom(self, scan: _Scan) -> Iterator[_Found]:
        for name, pattern in self._regexes:
            for match in pattern.finditer(scan.text):
                if match.end() > match.start():
                    yield self._named(name, match[0], match)
        for lookup in self._lookups:
            if lookup.needs_one_of is not None and lookup.needs_one_of.isdisjoint(scan.words):
                continue
            for match in lookup.pattern.finditer(scan.text):
                yield self._named(lookup.type, lookup.written.get(_fold(match[0]), match[0]), match)

    def _named(self, name: str, value: str, match: re.Match[str]) -> _Found:
        return _Found(name, self._synonyms.get(_fold(value), value), match[0], match.start(), match.end())
