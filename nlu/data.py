"""Loading training data: our YAML, Rasa 3.x NLU YAML, and CSV.

``load(path)`` reads one file or every ``*.yml``, ``*.yaml`` and ``*.csv`` in a directory (sorted
by name, merged) into a :class:`TrainingData`. The format of each file is chosen by its content:

* a ``.csv`` file is CSV: a header row with ``text`` and ``intent`` columns (``,`` ``;`` or tab
  separated, as spreadsheets save it; an optional ``language`` column is used, others ignored);
* otherwise the file is YAML, and
  * a mapping with a top-level ``nlu:`` is Rasa NLU data (``intent``, ``synonym``, ``regex`` and
    ``lookup`` items; ``version``, ``responses``, ``stories`` and ``rules`` are ignored);
  * a mapping with any of ``intents``, ``out_of_scope_examples``, ``language``, ``synonyms``,
    ``regexes``, ``lookups`` is our format (see config/intents/retail.en.yml);
  * any other Rasa file (``stories:``, ``rules:``, ``responses:``, a domain) holds no NLU data and
    adds nothing;
  * anything else is an error.

In every format the intent labels ``oos`` and ``out_of_scope`` (any case) mean out-of-scope, and
examples may carry Rasa's entity markup (``[48213](order_number)``, ``[питер](city:Санкт-Петербург)``,
``[питер]{"entity": "city", "value": "Санкт-Петербург"}``): the markup is removed from the text and
the spans are kept on the example; an annotation with a value is also a synonym.

Every problem is a :class:`shared.errors.ConfigError` naming the file, and the line or row where
one is known: nothing in the data is dropped silently. One kind of problem is a warning instead: the
same text (after case and spaces) under two intents. Public benchmark files carry a few such
machine-translation collisions, and refusing the whole file for them helps nobody; the text is kept
under neither intent (the model cannot learn both) and ``TrainingData.warnings`` names both.
``load(path, strict=True)`` refuses the data instead, as ``seamline data validate --strict`` does.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, cast

import yaml

from seamline.nlu.parse import OUT_OF_SCOPE
from seamline.shared.errors import ConfigError

DATA_SUFFIXES = (".yml", ".yaml", ".csv")
OUT_OF_SCOPE_LABELS = frozenset({"oos", "out_of_scope"})

# Entity = (start, end, entity type, value), offsets in the example's text without the markup.
EntitySpan = tuple[int, int, str, str]


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    language: str | None = None
    entities: tuple[EntitySpan, ...] = ()


class DataWarning(NamedTuple):
    """A problem that does not stop training: in which file, what, and how to fix it."""

    file: str
    what: str
    fix: str


@dataclass
class TrainingData:
    examples: list[Example] = field(default_factory=list)  # in scope
    out_of_scope: list[Example] = field(default_factory=list)  # intent == OUT_OF_SCOPE
    synonyms: dict[str, str] = field(default_factory=dict)  # variant (lowercased) -> canonical
    regexes: dict[str, list[str]] = field(default_factory=dict)  # name -> patterns
    lookups: dict[str, list[str]] = field(default_factory=dict)  # entity -> values
    sources: list[Path] = field(default_factory=list)  # files read, in order
    warnings: list[DataWarning] = field(default_factory=list)  # what was dropped and why (load())

    @property
    def all_examples(self) -> list[Example]:
        return self.examples + self.out_of_scope

    def merge(self, other: TrainingData) -> TrainingData:
        """A new TrainingData with both; a variant mapped to two different canonicals is an error."""
        merged = TrainingData(
            list(self.examples) + list(other.examples),
            list(self.out_of_scope) + list(other.out_of_scope),
            dict(self.synonyms),
            {name: list(patterns) for name, patterns in self.regexes.items()},
            {name: list(values) for name, values in self.lookups.items()},
            list(self.sources) + list(other.sources),
        )
        setting = ", ".join(str(p) for p in other.sources) or "training data"
        for variant, canonical in other.synonyms.items():
            _add_synonym(merged.synonyms, variant, canonical, setting)
        for name, patterns in other.regexes.items():
            _extend_unique(merged.regexes.setdefault(name, []), patterns)
        for name, values in other.lookups.items():
            _extend_unique(merged.lookups.setdefault(name, []), values)
        return merged


def load(path: Path | str, *, strict: bool = False) -> TrainingData:
    """Training data from one file, or from every data file in a directory (sorted by name).
    ``strict``: a text under two intents is an error rather than a warning (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            str(path), "does not exist", "Check the path; the shipped training data is in config/intents/"
        )
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.is_file() and p.suffix.lower() in DATA_SUFFIXES and not p.name.startswith(".")
        )
        if not files:
            raise ConfigError(
                str(path),
                "has no training data files (*.yml, *.yaml or *.csv)",
                "Put the intent files there (restore config/intents from git)",
            )
    else:
        files = [path]
    data = TrainingData()
    labelled: dict[str, list[tuple[str, Path, str]]] = {}
    for file in files:
        part = load_file(file)
        for example in part.all_examples:
            labelled.setdefault(_label_key(example.text), []).append((example.intent, file, example.text))
        data = data.merge(part)
    clashes = _two_intents(labelled, strict)
    if clashes:
        data.examples = [e for e in data.examples if _label_key(e.text) not in clashes]
        data.out_of_scope = [e for e in data.out_of_scope if _label_key(e.text) not in clashes]
        data.warnings = list(clashes.values())
    if not data.examples:
        raise ConfigError(
            str(path),
            "contains no intent examples",
            "Add examples under `intents:` (our YAML), `nlu:` (Rasa) or rows (CSV)",
        )
    return data


def load_file(path: Path | str) -> TrainingData:
    """One file, in the format its content says (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            str(path),
            "does not exist" if not path.exists() else "is not a file",
            "Check the path; the shipped training data is in config/intents/",
        )
    text = _read(path)
    if path.suffix.lower() == ".csv":
        data = _from_csv(path, text)
    else:
        document = _parse_yaml(path, text)
        data = _from_yaml(path, document)
    data.sources = [path]
    return data


def load_intents(directory: Path) -> tuple[list[Example], list[Example]]:
    """(in-scope examples, out-of-scope examples) from the data in ``directory``."""
    data = load(directory)
    return data.examples, data.out_of_scope


def fingerprint(data: TrainingData) -> str:
    """A sha256 of what training sees; equal for the same data in any file order or dict order."""

    def example(e: Example) -> str:
        return json.dumps(
            [e.text, e.intent, e.language, [list(span) for span in sorted(e.entities)]], ensure_ascii=False
        )

    canonical = {
        "format": 1,
        "examples": sorted(example(e) for e in data.examples),
        "out_of_scope": sorted(example(e) for e in data.out_of_scope),
        "synonyms": sorted(data.synonyms.items()),
        "regexes": {name: sorted(set(patterns)) for name, patterns in data.regexes.items() if patterns},
        "lookups": {name: sorted(set(values)) for name, values in data.lookups.items() if values},
    }
    serialised = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(serialised.encode("utf-8")).hexdigest()


# --- reading ------------------------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            str(path),
            f"cannot be read ({exc.strerror or exc})",
            "Check that the file exists and is readable by the bot's user",
        ) from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            str(path),
            f"is not UTF-8 text (undecodable byte on line {line})",
            "Save it as UTF-8 (in Excel: 'CSV UTF-8'; in an editor: encoding UTF-8)",
        ) from exc


def _language_from_name(path: Path) -> str | None:
    """``retail.ru.yml`` -> "ru"; ``nlu.yml`` -> None."""
    parts = path.name.split(".")
    return parts[-2].lower() if len(parts) >= 3 and re.fullmatch(r"[A-Za-z]{2}", parts[-2]) else None


def _intent_label(label: str) -> str:
    label = label.strip()
    return OUT_OF_SCOPE if label.lower() in OUT_OF_SCOPE_LABELS else label


# --- YAML ---------------------------------------------------------------------------------------


class _Str(str):
    """A string that remembers the line it was on (1-based) and whether it was a ``|`` block."""

    line: int | None = None
    block: bool = False


class _Map(dict[str, Any]):
    line: int | None = None


try:  # libyaml's parser reads the intents about ten times faster than the pure-Python one
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


class _Seq(list[Any]):
    line: int | None = None


class _Loader(_SafeLoader):
    """Safe YAML where every plain value is text (``no``, ``yes``, ``123``, ``3.1`` stay as
    written, not booleans or numbers), duplicate keys are errors, and values know their line."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag in ("tag:yaml.org,2002:null", "tag:yaml.org,2002:merge")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_str(loader: _Loader, node: yaml.ScalarNode) -> _Str:
    value = _Str(loader.construct_scalar(node))
    value.line = node.start_mark.line + 1
    # A block scalar (`examples: |`) starts on the line after its indicator.
    value.block = node.style in ("|", ">")
    return value


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Iterator[_Seq]:
    data = _Seq()
    data.line = node.start_mark.line + 1
    yield data
    data.extend(loader.construct_sequence(node))


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[_Map]:
    data = _Map()
    data.line = node.start_mark.line + 1
    yield data
    seen: dict[str, int] = {}
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"the key {key_node.value!r} appears twice (first on line {seen[key_node.value]})",
                    key_node.start_mark,
                )
            seen[key_node.value] = key_node.start_mark.line + 1
    # every plain key is a _Str here (the resolvers above make all scalars text), kept with its line
    data.update(cast("dict[str, Any]", loader.construct_mapping(node)))


_Loader.add_constructor("tag:yaml.org,2002:str", _construct_str)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _parse_yaml(path: Path, text: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # a safe loader: _Loader derives from (C)SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark, context = exc.problem_mark or exc.context_mark, exc.context_mark
        where = f" on line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        if context is not None and mark is not None and context.line != mark.line:
            problem += f" (the part that starts on line {context.line + 1})"
        raise ConfigError(
            str(path),
            f"is not valid YAML{where}: {problem}",
            "Fix that line: keep the indentation of its neighbours, and put a text "
            "containing ': ', '#' or starting with a quote or bracket in double quotes",
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"is not valid YAML: {exc}", "Fix the file") from exc


def _line(value: Any) -> str:
    line = getattr(value, "line", None)
    return f" (line {line})" if line else ""


OUR_KEYS = ("language", "intents", "out_of_scope_examples", "synonyms", "regexes", "lookups")
# Top-level keys of Rasa's other files (domain, stories, rules), which hold no NLU data.
RASA_OTHER_KEYS = (
    "version",
    "responses",
    "stories",
    "rules",
    "entities",
    "slots",
    "actions",
    "forms",
    "session_config",
    "e2e_actions",
)


def _from_yaml(path: Path, document: Any) -> TrainingData:
    if document is None or (isinstance(document, str) and not document.strip()):
        raise ConfigError(str(path), "is empty", "Add training data to it or delete it")
    if not isinstance(document, dict):
        kind = "a list" if isinstance(document, list) else "plain text"
        raise ConfigError(
            str(path),
            f"is not training data: its top level is {kind}",
            "Start it with `intents:` (Seamline's format, see config/intents/retail.en.yml) or `nlu:` (Rasa's format)",
        )
    if "nlu" in document:
        return _from_rasa(path, document)
    ours_only = [key for key in OUR_KEYS if key != "intents" and key in document]
    if any(key in document for key in RASA_OTHER_KEYS) and not ours_only:
        return TrainingData()  # a Rasa domain, stories or rules file: no NLU data in it
    if any(key in document for key in OUR_KEYS):
        return _from_ours(path, document)
    keys = ", ".join(str(k) for k in document) or "none"
    raise ConfigError(
        str(path),
        f"has an unknown structure (top-level keys: {keys})",
        "Use `intents:` (Seamline's format, see config/intents/retail.en.yml) or `nlu:` (Rasa's format)",
    )


# Our format ---------------------------------------------------------------------------------------


def _from_ours(path: Path, document: dict[str, Any]) -> TrainingData:
    setting = str(path)
    unknown = [key for key in document if key not in OUR_KEYS]
    if unknown:
        raise ConfigError(
            setting,
            f"has an unknown top-level key {str(unknown[0])!r}{_line(unknown[0])}",
            f"Use only: {', '.join(OUR_KEYS)} (check the spelling and indentation)",
        )
    language = _language_of(path, document)
    data = TrainingData()
    intents = document.get("intents") or {}
    if not isinstance(intents, dict):
        raise ConfigError(
            setting,
            f"`intents:` must map intent names to their examples{_line(intents)}",
            "Write `intents:` then, indented, `greet:` and under it `examples:` with a `- ` list",
        )
    for name, body in intents.items():
        intent = _intent_label(str(name))
        where = f"intent {str(name)!r}{_line(name)}"
        if not intent:
            raise ConfigError(setting, f"has an intent with an empty name{_line(name)}", "Give the intent a name")
        if not isinstance(body, dict) or "examples" not in body:
            raise ConfigError(
                setting,
                f"{where} has no `examples:` list",
                'Under the intent name write `examples:` and then one `- "text"` per line',
            )
        extra = [key for key in body if key not in ("examples", "synonyms")]
        if extra:
            raise ConfigError(
                setting,
                f"{where} has an unknown key {str(extra[0])!r}{_line(extra[0])}",
                "An intent has only `examples:` and optionally `synonyms:`",
            )
        texts = body["examples"]
        if not isinstance(texts, list) or not texts:
            raise ConfigError(
                setting, f"{where} has no examples", 'List its examples under `examples:`, one `- "text"` per line'
            )
        target = data.out_of_scope if intent == OUT_OF_SCOPE else data.examples
        for item in texts:
            target.append(_example(setting, item, intent, language, where, data.synonyms))
        if body.get("synonyms") is not None:
            _add_synonym_map(setting, body["synonyms"], data.synonyms, f"{where}: `synonyms:`")
    oos = document.get("out_of_scope_examples")
    if oos is not None:
        if not isinstance(oos, list):
            raise ConfigError(
                setting,
                f"`out_of_scope_examples:` must be a list{_line(oos)}",
                'Write one `- "text"` per line under it',
            )
        for item in oos:
            data.out_of_scope.append(
                _example(setting, item, OUT_OF_SCOPE, language, "`out_of_scope_examples:`", data.synonyms)
            )
    if document.get("synonyms") is not None:
        _add_synonym_map(setting, document["synonyms"], data.synonyms, "`synonyms:`")
    for key, into in (("regexes", data.regexes), ("lookups", data.lookups)):
        table = document.get(key)
        if table is None:
            continue
        if not isinstance(table, dict):
            raise ConfigError(
                setting,
                f"`{key}:` must map names to lists{_line(table)}",
                f"Write `{key}:` then, indented, `name:` and a `- ` list under it",
            )
        for name, values in table.items():
            values = _text_list(setting, values, f"`{key}:` {str(name)!r}{_line(name)}")
            if key == "regexes":
                _check_regexes(setting, str(name), values)
            _extend_unique(into.setdefault(str(name), []), values)
    return data


def _language_of(path: Path, document: dict[str, Any]) -> str | None:
    declared = document.get("language")
    declared = str(declared).strip().lower() if declared else None
    named = _language_from_name(path)
    if declared and named and declared != named:
        raise ConfigError(
            str(path),
            f"says `language: {declared}` but its name says {named!r}",
            "Fix one of them (files are named <domain>.<language>.yml)",
        )
    return declared or named


def _text_list(setting: str, values: Any, where: str) -> list[str]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not values:
        raise ConfigError(setting, f"{where} needs a list of values", "Write one `- value` per line under it")
    out = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                setting,
                f"{where} has an empty or non-text value{_line(value)}",
                "Write one non-empty `- value` per line (quote it if it has ': ' or '#')",
            )
        out.append(str(value).strip())
    return out


def _add_synonym_map(setting: str, table: Any, synonyms: dict[str, str], where: str) -> None:
    if not isinstance(table, dict):
        raise ConfigError(
            setting,
            f"{where} must map each canonical value to its variants{_line(table)}",
            "Write `canonical value:` and under it `- variant` lines",
        )
    for canonical, variants in table.items():
        canonical_text = str(canonical).strip()
        if not canonical_text:
            raise ConfigError(
                setting, f"{where} has an empty canonical value{_line(canonical)}", "Write the value the variants mean"
            )
        for variant in _text_list(setting, variants, f"{where} {canonical_text!r}{_line(canonical)}"):
            _add_synonym(synonyms, variant, canonical_text, setting)


def _example(
    setting: str, item: Any, intent: str, language: str | None, where: str, synonyms: dict[str, str]
) -> Example:
    line = getattr(item, "line", None)
    if not isinstance(item, str) or not item.strip():
        raise ConfigError(
            setting,
            f"{where} has an empty example" + (f" on line {line}" if line else ""),
            "Write the text after `- `, or delete the line",
        )
    place = f"{where}, example on line {line}" if line else where
    text, entities = _strip_markup(setting, str(item).strip(), place, synonyms)
    return Example(text, intent, language, entities)


# Rasa ---------------------------------------------------------------------------------------------


def _from_rasa(path: Path, document: dict[str, Any]) -> TrainingData:
    setting = str(path)
    items = document.get("nlu")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise ConfigError(
            setting,
            f"`nlu:` must be a list of items{_line(items)}",
            "Write items like `- intent: greet` with `examples: |` under them",
        )
    language = _language_from_name(path)
    data = TrainingData()
    for item in items:
        if not isinstance(item, dict):
            raise ConfigError(
                setting,
                f"`nlu:` has an item that is not `- intent:`, `- synonym:`, `- regex:` or `- lookup:`{_line(item)}",
                "Fix or delete that item",
            )
        kinds = [kind for kind in ("intent", "synonym", "regex", "lookup") if kind in item]
        if len(kinds) != 1:
            found = ", ".join(str(k) for k in item)
            raise ConfigError(
                setting,
                f"`nlu:` item{_line(item)} must have exactly one of intent, synonym, regex or lookup (it has: {found})",
                "Fix or delete that item",
            )
        kind = kinds[0]
        name = str(item[kind] or "").strip()
        where = f"{kind} {name!r}{_line(item)}"
        if not name:
            raise ConfigError(setting, f"`nlu:` has an empty {kind} name{_line(item)}", f"Write the {kind}'s name")
        if "examples" not in item:
            raise ConfigError(
                setting, f"{where} has no `examples:`", "Add `examples: |` with one `- text` line per example"
            )
        lines = list(_rasa_examples(setting, item["examples"], where))
        if not lines:
            raise ConfigError(
                setting, f"{where} has no examples", "Add `examples: |` with one `- text` line per example"
            )
        if kind == "intent":
            intent = _intent_label(name)
            target = data.out_of_scope if intent == OUT_OF_SCOPE else data.examples
            for text, line_where in lines:
                clean, entities = _strip_markup(setting, text, line_where, data.synonyms)
                target.append(Example(clean, intent, language, entities))
        elif kind == "synonym":
            for text, _ in lines:
                _add_synonym(data.synonyms, text, name, setting)
        elif kind == "regex":
            patterns = [text for text, _ in lines]
            _check_regexes(setting, name, patterns)
            _extend_unique(data.regexes.setdefault(name, []), patterns)
        else:
            _extend_unique(data.lookups.setdefault(name, []), [text for text, _ in lines])
    return data


def _rasa_examples(setting: str, examples: Any, where: str) -> Iterable[tuple[str, str]]:
    """(text, where) for each example of a Rasa item: a ``|`` block of ``- `` lines, or a list of
    ``{text: ..., metadata: ...}`` (or of plain texts)."""
    if isinstance(examples, str):
        first = (getattr(examples, "line", None) or 0) + (1 if getattr(examples, "block", False) else 0)
        for offset, raw in enumerate(examples.splitlines()):
            line = f"{where}, line {first + offset}" if first else where
            stripped = raw.strip()
            if not stripped:
                continue
            if not stripped.startswith("-"):
                raise ConfigError(
                    setting,
                    f"{line}: {stripped!r} does not start with '- '",
                    "Start every example with '- ' (a dash and a space)",
                )
            text = stripped[1:].strip()
            if not text:
                raise ConfigError(
                    setting, f"{line} has an empty example", "Write the text after '- ' or delete the line"
                )
            yield text, line
    elif isinstance(examples, list):
        for entry in examples:
            value = entry.get("text") if isinstance(entry, dict) else entry
            line = f"{where}{_line(entry)}"
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(
                    setting,
                    f"{line} has an example without text",
                    "Each list entry needs `text:` (and optionally `metadata:`)",
                )
            yield value.strip(), line
    elif examples is not None:
        raise ConfigError(
            setting,
            f"{where}: `examples:` must be a `|` block or a list",
            "Write `examples: |` and one `- text` line per example under it",
        )


# Entity markup ------------------------------------------------------------------------------------

# Rasa's annotation syntax: [text](type), [text](type:value), [text]{"entity": ..., "value": ...},
# [text][{"entity": ...}, {"entity": ...}].
ENTITY_MARKUP = re.compile(
    r"\[(?P<text>[^\]]+?)\]"
    r"(?:\((?P<type>[^:)]+?)(?::(?P<value>[^)]+))?\)"
    r"|\{(?P<dict>[^}]+?)\}"
    r"|\[(?P<list>\{.*?\})\])"
)


def _strip_markup(setting: str, raw: str, where: str, synonyms: dict[str, str]) -> tuple[str, tuple[EntitySpan, ...]]:
    if "[" not in raw:
        return raw, ()
    parts: list[str] = []
    entities: list[EntitySpan] = []
    position = length = 0
    for match in ENTITY_MARKUP.finditer(raw):
        before = raw[position : match.start()]
        parts.append(before)
        length += len(before)
        text = match.group("text")
        start, end = length, length + len(text)
        parts.append(text)
        length = end
        position = match.end()
        for kind, value in _annotations(setting, match, where):
            entities.append((start, end, kind, value))
            if value != text:
                _add_synonym(synonyms, text, value, setting)
    parts.append(raw[position:])
    return "".join(parts), tuple(entities)


def _annotations(setting: str, match: re.Match[str], where: str) -> list[tuple[str, str]]:
    text = match.group("text")
    if match.group("type"):
        return [(match.group("type").strip(), (match.group("value") or text).strip())]
    source = "{" + match.group("dict") + "}" if match.group("dict") else "[" + match.group("list") + "]"
    try:
        parsed = json.loads(source)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            setting,
            f"{where}: the entity annotation {source} is not valid JSON ({exc.msg})",
            'Write it like [text]{"entity": "type", "value": "canonical"} with double quotes',
        ) from exc
    out = []
    for annotation in parsed if isinstance(parsed, list) else [parsed]:
        if not isinstance(annotation, dict) or not str(annotation.get("entity") or "").strip():
            raise ConfigError(
                setting,
                f'{where}: the entity annotation {source} has no "entity"',
                'Write it like [text]{"entity": "type", "value": "canonical"}',
            )
        value = annotation.get("value")
        out.append((str(annotation["entity"]).strip(), text if value is None else str(value)))
    return out


# Shared helpers -----------------------------------------------------------------------------------


def _add_synonym(synonyms: dict[str, str], variant: str, canonical: str, setting: str) -> None:
    key = str(variant).strip().lower()
    canonical = str(canonical)
    if key == canonical or not key:
        return
    existing = synonyms.get(key)
    if existing is not None and existing != canonical:
        raise ConfigError(
            setting,
            f"the synonym {key!r} means both {existing!r} and {canonical!r}",
            "Keep the variant under one canonical value only",
        )
    synonyms[key] = canonical


def _extend_unique(target: list[str], values: Iterable[str]) -> None:
    for value in values:
        if value not in target:
            target.append(value)


def _check_regexes(setting: str, name: str, patterns: list[str]) -> None:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(
                setting,
                f"the regex {name!r} has an invalid pattern '{pattern}' ({exc})",
                "Fix the pattern (Python `re` syntax; in YAML use single quotes around it)",
            ) from exc


def _label_key(text: str) -> str:
    return " ".join(text.lower().replace("ё", "е").split())


def _two_intents(labelled: dict[str, list[tuple[str, Path, str]]], strict: bool) -> dict[str, DataWarning]:
    """Texts under two different intents: an error with ``strict``, else a warning per text (by its key)."""
    found = {}
    for key, uses in labelled.items():
        first_intent, first_file, _ = uses[0]
        other = next((use for use in uses if use[0] != first_intent), None)
        if other is None:
            continue
        intent, file, text = other
        elsewhere = (
            "" if first_file == file else f" in {first_file.name if first_file.parent == file.parent else first_file}"
        )
        if strict:
            raise ConfigError(
                str(file),
                f"the example {text!r} is under {intent!r} and under {first_intent!r}{elsewhere}",
                "Keep it under the one intent it means, or reword one of them",
            )
        found[key] = DataWarning(
            str(file),
            f"the example {text!r} is under {intent!r} and under {first_intent!r}{elsewhere}; it is kept under neither",
            "keep it under the one intent it means, or reword one of them",
        )
    return found


def _csv_delimiter(header: str) -> str:
    """The separator spreadsheets saved the file with: the one that makes `text` and `intent`
    columns of the header, else the one that splits it most."""
    candidates = (",", ";", "\t")
    for delimiter in candidates:
        columns = [c.strip().strip('"').lower() for c in header.split(delimiter)]
        if "text" in columns and "intent" in columns:
            return delimiter
    return max(candidates, key=header.count)


def _from_csv(path: Path, text: str) -> TrainingData:
    setting = str(path)
    if not text.strip():
        raise ConfigError(setting, "is empty", "Add a header row `text,intent` and one row per example")
    header = text.splitlines()[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_csv_delimiter(header))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ConfigError(
            setting, f"is not valid CSV on line {reader.line_num} ({exc})", "Check the quotes on that line"
        ) from exc
    columns = [c.strip().lower() for c in rows[0]]
    if "text" not in columns or "intent" not in columns:
        found = ", ".join(repr(c) for c in rows[0]) or "none"
        raise ConfigError(
            setting,
            f"has no `text` and `intent` columns (its columns are: {found})",
            "Make the first row the header `text,intent`",
        )
    text_at, intent_at = columns.index("text"), columns.index("intent")
    language_at = columns.index("language") if "language" in columns else None
    default_language = _language_from_name(path)
    data = TrainingData()
    for number, row in enumerate(rows[1:], start=2):  # row 1 is the header, as a spreadsheet counts
        if not any(cell.strip() for cell in row):
            continue

        def cell(at: int | None, row: list[str] = row) -> str:
            return row[at].strip() if at is not None and at < len(row) else ""

        sample, label = cell(text_at), cell(intent_at)
        if not sample:
            raise ConfigError(setting, f"row {number} has an empty text", "Fill in the text or delete the row")
        if not label:
            raise ConfigError(setting, f"row {number} has an empty intent", "Fill in the intent or delete the row")
        intent = _intent_label(label)
        clean, entities = _strip_markup(setting, sample, f"row {number}", data.synonyms)
        example = Example(clean, intent, cell(language_at).lower() or default_language, entities)
        (data.out_of_scope if intent == OUT_OF_SCOPE else data.examples).append(example)
    return data
