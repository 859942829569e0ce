"""Training data: our YAML, Rasa 3.x NLU YAML and CSV, merged, fingerprinted, with clear errors."""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from seamline.nlu.data import Example, TrainingData, fingerprint, load, load_intents
from seamline.nlu.parse import OUT_OF_SCOPE
from seamline.shared.errors import ConfigError
from seamline.shared.settings import CONFIG_DIR

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RASA = FIXTURES / "rasa_nlu.yml"
CSV = FIXTURES / "intents_small.csv"

SHIPPED_INTENTS = {
    "greet",
    "goodbye",
    "thanks",
    "order_status",
    "delivery_info",
    "return_item",
    "cancel_order",
    "change_address",
    "payment_problem",
    "complaint",
    "human_agent",
    "opening_hours",
    "product_availability",
    "link_account",
    "request_callback",
    "remind_me",
}

OURS = """\
language: en
intents:
  order_status:
    examples:
      - "where is my parcel"
      - "[48213](order_number) where is it"
      - no
    synonyms:
      order number:
        - order no
        - "order #"
  Oos:
    examples:
      - "sing me a song"
synonyms:
  CDEK:
    - cdek
    - sdek
regexes:
  tracking_number:
    - '(?i)\\b[a-z]{2}\\d{9}[a-z]{2}\\b'
lookups:
  delivery_company:
    - CDEK
    - Boxberry
out_of_scope_examples:
  - "what's the weather"
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def spans(example: Example) -> list[tuple[str, str, str]]:
    """(the text the span points at, type, value) for each entity."""
    return [(example.text[start:end], kind, value) for start, end, kind, value in example.entities]


def error(path, match: str) -> ConfigError:
    with pytest.raises(ConfigError, match=match) as caught:
        load(path)
    return caught.value


# --- Rasa ------------------------------------------------------------------------------------------


def test_a_rasa_nlu_file_loads_examples_with_markup_stripped_and_spans_kept():
    data = load(RASA)
    by_text = {e.text: e for e in data.all_examples}
    assert {e.intent for e in data.examples} == {
        "greet",
        "order_status",
        "delivery_info",
        "cancel_order",
        "return_item",
    }
    assert len(data.examples) == 18 and len(data.out_of_scope) == 2
    assert all(e.intent == OUT_OF_SCOPE for e in data.out_of_scope)
    assert all("[" not in e.text and "](" not in e.text and "{" not in e.text for e in data.all_examples)

    assert spans(by_text["where is my order 48213"]) == [("48213", "order_number", "48213")]
    assert spans(by_text["track order 90817 sent by russian post"]) == [
        ("90817", "order_number", "90817"),
        ("russian post", "delivery_company", "Russian Post"),
    ]
    assert spans(by_text["my parcel from cdek is late"]) == [("cdek", "delivery_company", "CDEK")]
    assert spans(by_text["do you deliver to nyc"]) == [("nyc", "city", "New York")]
    assert spans(by_text["how long does shipping to Boston take"]) == [("Boston", "city", "Boston")]


def test_a_russian_intent_keeps_its_spans_on_cyrillic_text():
    data = load(RASA)
    russian = [e for e in data.examples if e.intent == "return_item"]
    assert [e.text for e in russian][:2] == [
        "хочу вернуть куртку, заказ 48213",
        "как оформить возврат, посылка пришла сдэком",
    ]
    assert spans(russian[0]) == [("куртку", "product", "куртку"), ("48213", "order_number", "48213")]
    assert spans(russian[2]) == [("667788", "order_number", "667788")]
    assert spans(russian[3]) == [("питере", "city", "Санкт-Петербург")]


def test_rasa_examples_given_as_a_list_with_metadata_are_read():
    cancel = [e.text for e in load(RASA).examples if e.intent == "cancel_order"]
    assert cancel == ["please cancel order 301928", "I ordered twice by mistake, cancel one"]


def test_rasa_synonyms_come_from_synonym_items_and_from_annotation_values():
    synonyms = load(RASA).synonyms
    # synonym: items
    assert synonyms["сдек"] == "CDEK" and synonyms["sdek"] == "CDEK"
    assert synonyms["почта россии"] == "Russian Post" and synonyms["pochta"] == "Russian Post"
    # {"entity": ..., "value": ...} and (type:value) annotations, lowercased
    assert synonyms["cdek"] == "CDEK" and synonyms["nyc"] == "New York"
    assert synonyms["сдэком"] == "CDEK" and synonyms["питере"] == "Санкт-Петербург"
    assert synonyms["russian post"] == "Russian Post"
    # an annotation without a value is not a synonym
    assert "boston" not in synonyms and "boxberry" not in synonyms


def test_rasa_regexes_and_lookups_are_read_and_responses_and_rules_ignored():
    data = load(RASA)
    assert data.regexes == {"order_number": [r"\b\d{5,8}\b"], "zipcode": [r"\b[0-9]{6}\b"]}
    assert data.lookups == {"city": ["New York", "Boston", "Москва"]}
    assert data.sources == [RASA]
    assert not any("Hello!" in e.text for e in data.all_examples)


def test_rasa_stories_and_domain_files_next_to_the_data_add_nothing(tmp_path):
    shutil.copy(RASA, tmp_path / "nlu.yml")
    write(tmp_path / "stories.yml", 'version: "3.1"\nstories:\n- story: hi\n  steps:\n  - intent: greet\n')
    write(tmp_path / "domain.yml", 'version: "3.1"\nintents:\n  - greet\nresponses:\n  utter_greet:\n  - text: Hi\n')
    assert len(load(tmp_path).all_examples) == len(load(RASA).all_examples)


# --- our YAML --------------------------------------------------------------------------------------


def test_our_yaml_with_synonyms_regexes_lookups_and_out_of_scope(tmp_path):
    data = load(write(tmp_path / "shop.en.yml", OURS))
    assert [(e.text, e.intent, e.language) for e in data.examples] == [
        ("where is my parcel", "order_status", "en"),
        ("48213 where is it", "order_status", "en"),
        ("no", "order_status", "en"),
    ]  # `- no` is the text "no", not a boolean
    assert spans(data.examples[1]) == [("48213", "order_number", "48213")]
    assert sorted(e.text for e in data.out_of_scope) == ["sing me a song", "what's the weather"]
    assert data.synonyms == {"order no": "order number", "order #": "order number", "cdek": "CDEK", "sdek": "CDEK"}
    assert data.regexes == {"tracking_number": [r"(?i)\b[a-z]{2}\d{9}[a-z]{2}\b"]}
    assert data.lookups == {"delivery_company": ["CDEK", "Boxberry"]}


def test_the_language_comes_from_the_file_name_when_the_file_does_not_say(tmp_path):
    text = OURS.replace("language: en\n", "")
    assert {e.language for e in load(write(tmp_path / "shop.ru.yml", text)).all_examples} == {"ru"}
    assert {e.language for e in load(write(tmp_path / "shop.yml", text)).all_examples} == {None}


# --- CSV -------------------------------------------------------------------------------------------


def test_csv_rows_labelled_oos_in_any_case_are_out_of_scope_and_extra_columns_ignored():
    data = load(CSV)
    assert [(e.text, e.intent, e.language) for e in data.examples] == [
        ("hello!", "greet", "en"),
        ("привет", "greet", "ru"),
        ("where is order 48213", "order_status", "en"),
        ("где заказ, уже неделю жду", "order_status", "ru"),
    ]
    assert spans(data.examples[2]) == [("48213", "order_number", "48213")]
    assert [(e.text, e.intent) for e in data.out_of_scope] == [
        ("what's 2+2", OUT_OF_SCOPE),
        ("сколько тебе лет", OUT_OF_SCOPE),
        ("tell me a joke", OUT_OF_SCOPE),
    ]
    assert data.synonyms == {} and data.regexes == {} and data.lookups == {}


def test_a_csv_saved_by_excel_with_a_bom_and_semicolons_loads(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufefftext;intent\r\nздравствуйте;greet\r\nпока;goodbye\r\n;;\r\n".encode("utf-8"))
    assert [(e.text, e.intent) for e in load(path).examples] == [("здравствуйте", "greet"), ("пока", "goodbye")]


# --- directories, merging ----------------------------------------------------------------------------


def test_a_directory_mixing_formats_is_read_in_name_order_and_merged(tmp_path):
    shutil.copy(RASA, tmp_path / "b_rasa.yaml")
    shutil.copy(CSV, tmp_path / "a_small.csv")
    write(tmp_path / "c_ours.en.yml", OURS)
    write(tmp_path / "notes.txt", "not data")
    write(tmp_path / ".hidden.yml", "garbage: [")
    data = load(tmp_path)
    assert [p.name for p in data.sources] == ["a_small.csv", "b_rasa.yaml", "c_ours.en.yml"]
    parts = [load(tmp_path / name) for name in ("a_small.csv", "b_rasa.yaml", "c_ours.en.yml")]
    assert data.examples == [e for part in parts for e in part.examples]
    assert data.out_of_scope == [e for part in parts for e in part.out_of_scope]
    assert data.all_examples == data.examples + data.out_of_scope
    assert data.synonyms["sdek"] == "CDEK" and data.synonyms["order no"] == "order number"
    assert set(data.regexes) == {"order_number", "zipcode", "tracking_number"}
    assert data.lookups["delivery_company"] == ["CDEK", "Boxberry"] and "city" in data.lookups


def test_merge_returns_new_data_and_keeps_both_sides():
    a = TrainingData([Example("hi", "greet")], [], {"sdek": "CDEK"}, {"n": ["1"]}, {"c": ["x"]}, [Path("a")])
    b = TrainingData(
        [Example("bye", "goodbye")],
        [Example("joke", OUT_OF_SCOPE)],
        {"сдек": "CDEK"},
        {"n": ["1", "2"]},
        {"c": ["y"]},
        [Path("b")],
    )
    merged = a.merge(b)
    assert [e.text for e in merged.all_examples] == ["hi", "bye", "joke"]
    assert merged.synonyms == {"sdek": "CDEK", "сдек": "CDEK"}
    assert merged.regexes == {"n": ["1", "2"]} and merged.lookups == {"c": ["x", "y"]}
    assert merged.sources == [Path("a"), Path("b")] and a.regexes == {"n": ["1"]}


# --- fingerprint -------------------------------------------------------------------------------------


def test_the_fingerprint_ignores_file_order_names_and_dict_order(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    shutil.copy(RASA, one / "a.yml")
    write(one / "b.en.yml", OURS)
    # The same data: files swapped by name, intents, examples and dict entries in another order.
    reordered = """\
lookups:
  delivery_company: [CDEK, Boxberry]
out_of_scope_examples: ["what's the weather"]
regexes:
  tracking_number: ['(?i)\\b[a-z]{2}\\d{9}[a-z]{2}\\b']
synonyms:
  CDEK: [sdek, cdek]
intents:
  OOS:
    examples: ["sing me a song"]
  order_status:
    synonyms:
      order number: ["order #", order no]
    examples:
      - no
      - "where is my parcel"
      - "[48213](order_number) where is it"
language: en
"""
    write(two / "a.en.yml", reordered)
    shutil.copy(RASA, two / "z_rasa.yml")
    first, second = load(one), load(two)
    assert first.examples != second.examples  # really in another order
    assert fingerprint(first) == fingerprint(second)
    assert len(fingerprint(first)) == 64 and int(fingerprint(first), 16) >= 0


def test_the_fingerprint_changes_when_one_example_changes(tmp_path):
    base = fingerprint(load(write(tmp_path / "a.en.yml", OURS)))
    changed = OURS.replace("where is my parcel", "where is my parcel?")
    assert fingerprint(load(write(tmp_path / "a.en.yml", changed))) != base
    relabelled = OURS.replace("language: en", "language: ru")
    assert fingerprint(load(write(tmp_path / "a.yml", relabelled))) != base
    other_span = OURS.replace("[48213](order_number)", "[48213](order_id)")
    assert fingerprint(load(write(tmp_path / "a.en.yml", other_span))) != base
    other_synonym = OURS.replace("    - sdek\n", "    - sdek\n    - cdэк\n")
    assert fingerprint(load(write(tmp_path / "a.en.yml", other_synonym))) != base


def test_the_fingerprint_is_independent_of_construction_order():
    examples = [Example("hi", "greet", "en"), Example("bye", "goodbye", "en", ((0, 3, "x", "bye"),))]
    a = TrainingData(examples, [], {"a": "A", "b": "B"}, {"r": ["1", "2"]}, {"l": ["x", "y"]}, [Path("1")])
    b = TrainingData(examples[::-1], [], {"b": "B", "a": "A"}, {"r": ["2", "1"]}, {"l": ["y", "x"]}, [Path("2")])
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(TrainingData(examples[:1], [], a.synonyms, a.regexes, a.lookups))


# --- errors ------------------------------------------------------------------------------------------


def test_a_missing_file_or_an_empty_directory_is_a_config_error(tmp_path):
    missing = error(tmp_path / "nope.yml", "does not exist")
    assert missing.setting == str(tmp_path / "nope.yml")
    error(tmp_path, "has no training data files")


def test_invalid_yaml_names_the_file_and_the_line(tmp_path):
    path = write(
        tmp_path / "bad.en.yml", 'language: en\nintents:\n  greet:\n    examples:\n      - "hi\n      - hello\n'
    )
    err = error(path, r"is not valid YAML on line \d+")
    assert err.setting == str(path) and "bad.en.yml" in str(err)
    indented = write(tmp_path / "indent.yml", "intents:\n  greet:\n    examples:\n      - hi\n     - hello\n")
    assert "line 5" in str(error(indented, "is not valid YAML"))


def test_a_key_written_twice_is_an_error_not_a_silent_overwrite(tmp_path):
    path = write(tmp_path / "dup.yml", "intents:\n  greet:\n    examples: [hi]\n  greet:\n    examples: [hello]\n")
    assert "first on line 2" in str(error(path, r"on line 4.*'greet' appears twice"))


def test_an_unknown_structure_is_an_error(tmp_path):
    error(write(tmp_path / "what.yml", "greetings:\n  - hi\n"), r"unknown structure \(top-level keys: greetings\)")
    error(write(tmp_path / "list.yml", "- hi\n- hello\n"), "its top level is a list")
    error(write(tmp_path / "empty.yml", "# nothing yet\n"), "is empty")
    error(
        write(tmp_path / "typo.yml", "intents:\n  greet:\n    examples: [hi]\nout_of_scope_exmaples:\n  - joke\n"),
        r"unknown top-level key 'out_of_scope_exmaples' \(line 4\)",
    )
    error(
        write(tmp_path / "rasa.yml", "nlu:\n- intnet: greet\n  examples: |\n    - hi\n"),
        r"item \(line 2\) must have exactly one of intent, synonym, regex or lookup \(it has: intnet, examples\)",
    )


def test_a_csv_without_text_and_intent_columns_names_the_columns_it_has(tmp_path):
    path = write(tmp_path / "bad.csv", "phrase,label\nhi,greet\n")
    err = error(path, r"has no `text` and `intent` columns \(its columns are: 'phrase', 'label'\)")
    assert err.setting == str(path)


def test_a_csv_row_with_an_empty_text_or_intent_is_named_not_dropped(tmp_path):
    error(write(tmp_path / "a.csv", "text,intent\nhi,greet\n,goodbye\n"), "row 3 has an empty text")
    error(
        write(tmp_path / "b.csv", 'text,intent\nhi,greet\n"bye, then",goodbye\nthanks,\n'), "row 4 has an empty intent"
    )


def test_empty_yaml_examples_are_named_with_their_line(tmp_path):
    error(
        write(tmp_path / "a.yml", 'intents:\n  greet:\n    examples:\n      - hi\n      - ""\n'),
        r"intent 'greet' \(line 2\) has an empty example on line 5",
    )
    error(
        write(tmp_path / "b.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n    -\n"),
        r"intent 'greet' \(line 2\), line 5 has an empty example",
    )
    error(
        write(tmp_path / "c.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n    hello\n"),
        r"line 5: 'hello' does not start with '- '",
    )


def test_an_invalid_regex_is_named(tmp_path):
    ours = OURS.replace("'(?i)\\b[a-z]{2}\\d{9}[a-z]{2}\\b'", "'[0-9'")
    error(write(tmp_path / "a.yml", ours), r"the regex 'tracking_number' has an invalid pattern '\[0-9'")
    rasa = "nlu:\n- intent: greet\n  examples: |\n    - hi\n- regex: zipcode\n  examples: |\n    - (\\d{6}\n"
    err = error(write(tmp_path / "b.yml", rasa), r"the regex 'zipcode' has an invalid pattern")
    assert err.setting == str(tmp_path / "b.yml")


def test_no_examples_at_all_is_an_error(tmp_path):
    error(write(tmp_path / "a.csv", "text,intent\n"), "contains no intent examples")
    error(write(tmp_path / "b.yml", "synonyms:\n  CDEK: [cdek]\n"), "contains no intent examples")
    error(
        write(tmp_path / "c.yml", "nlu:\n- intent: greet\n  examples: |\n"),
        r"intent 'greet' \(line 2\) has no examples",
    )
    error(write(tmp_path / "d.yml", "intents:\n  greet:\n    examples: []\n"), "intent 'greet' .* has no examples")


def test_the_same_text_under_two_intents_is_a_warning_and_kept_under_neither(tmp_path):
    write(tmp_path / "a.csv", "text,intent\nCancel my order,cancel_order\nstop it,cancel_order\n")
    write(tmp_path / "b.yml", "intents:\n  order_status:\n    examples: ['cancel  my order', 'where is it']\n")
    data = load(tmp_path)
    assert sorted(e.text for e in data.examples) == ["stop it", "where is it"]
    [warning] = data.warnings
    assert warning.file == str(tmp_path / "b.yml")
    assert re.search(r"'cancel  my order' is under 'order_status' and under 'cancel_order' in .*a.csv", warning.what)


def test_the_same_text_under_two_intents_is_an_error_when_strict(tmp_path):
    write(tmp_path / "a.csv", "text,intent\nCancel my order,cancel_order\n")
    write(tmp_path / "b.yml", "intents:\n  order_status:\n    examples: ['cancel  my order']\n")
    with pytest.raises(ConfigError, match="'cancel  my order' is under 'order_status' and under 'cancel_order'") as err:
        load(tmp_path, strict=True)
    assert err.value.setting == str(tmp_path / "b.yml")


def test_a_variant_meaning_two_canonicals_and_broken_annotations_are_errors(tmp_path):
    clash = OURS.replace("synonyms:\n  CDEK:", "synonyms:\n  Boxberry:\n    - sdek\n  CDEK:")
    error(write(tmp_path / "b.yml", clash), "the synonym 'sdek' means both 'Boxberry' and 'CDEK'")
    bad_json = OURS.replace('"where is my parcel"', """'where is my [parcel]{"entity": parcel}'""")
    error(
        write(tmp_path / "c.yml", bad_json),
        r"intent 'order_status' \(line 3\), example on line 5: .* is not valid JSON",
    )


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "cp1251.csv"
    path.write_bytes("text,intent\nпривет,greet\n".encode("cp1251"))
    error(path, r"is not UTF-8 text \(undecodable byte on line 2\)")


# --- the shipped data --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> TrainingData:
    return load(CONFIG_DIR / "intents")


def test_the_shipped_data_has_its_sixteen_intents_in_both_languages(shipped):
    assert [p.name for p in shipped.sources] == ["retail.en.yml", "retail.ru.yml"]
    by_language = defaultdict(set)
    for example in shipped.examples:
        by_language[example.language].add(example.intent)
    assert by_language == {"en": SHIPPED_INTENTS, "ru": SHIPPED_INTENTS}
    counts = defaultdict(int)
    for example in shipped.examples:
        counts[example.intent, example.language] += 1
    assert min(counts.values()) >= 30, counts
    assert {e.language for e in shipped.out_of_scope} == {"en", "ru"}


def test_the_shipped_data_has_no_repeated_examples_and_useful_tables(shipped):
    seen = defaultdict(list)
    for example in shipped.all_examples:
        seen[example.language, " ".join(example.text.lower().replace("ё", "е").split())].append(example.intent)
    assert [key for key, intents in seen.items() if len(intents) > 1] == []
    assert shipped.synonyms["cdek"] == "СДЭК" and shipped.synonyms["russian post"] == "Почта России"
    assert "Boxberry" in shipped.lookups["delivery_company"]
    assert shipped.regexes["tracking_number"]


def test_load_intents_keeps_its_old_shape(shipped):
    examples, out_of_scope = load_intents(CONFIG_DIR / "intents")
    assert examples == shipped.examples and out_of_scope == shipped.out_of_scope
    assert all(isinstance(e, Example) and e.intent != OUT_OF_SCOPE for e in examples)
