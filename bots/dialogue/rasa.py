"""A Rasa 3.x project run as it is: ``seamline run --rasa-project PATH``.

The Rasa files stay the source of truth: they are read at every start, never copied into Seamline's
config, so the project keeps working in Rasa and there is no second copy to drift. What is read:

- ``domain.yml`` (or ``domain/``): intents, entities, slots, responses, forms, custom actions
  (bots/dialogue/rasa_domain.py);
- ``data/**/*.yml``: ``nlu:`` trains Seamline's classifier at start when no model was trained on exactly
  this data (models in ``PATH/.seamline/models`` unless SEAMLINE_DATA_DIR says otherwise); ``rules:``
  become Seamline rules (bots/dialogue/rasa_rules.py); ``stories:`` are counted and reported;
- ``config.yml``: ``language`` only (the pipeline and policies are Rasa's models; Seamline has its own);
- ``endpoints.yml``: ``action_endpoint: url:`` is the action server (SEAMLINE_ACTION_ENDPOINT wins);
- ``credentials.yml``: ``rest:`` turns on the REST channel, ``POST /webhooks/rest/webhook``.

The project's responses are the bot's only language's; the framework's own texts (not understood,
handing over to people, linking channels, an action that failed) come from the minimal template, and
so do routing.yml and canned.yml. Everything read but not run is listed once at start (``ignored``).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seamline.bots.dialogue.model import Domain, Rule
from seamline.bots.dialogue.rasa_domain import RasaDomain, read_domain, read_yaml
from seamline.bots.dialogue.rasa_rules import DEFAULT_ACTIONS, UNSUPPORTED_ACTIONS, Reader
from seamline.bots.dialogue.responses import Responses
from seamline.bots.project import FRAMEWORK_RESPONSES, TEMPLATES_DIR
from seamline.nlu.data import TrainingData, load
from seamline.shared.errors import ConfigError
from seamline.shared.settings import Settings, action_endpoint_url, load_settings

if TYPE_CHECKING:
    from seamline.nlu.understanding import Understanding

FRAMEWORK_CONFIG = TEMPLATES_DIR / "minimal"  # routing.yml, canned.yml and the framework's texts
RASA_PORT = "5005"  # where Rasa clients look for `rasa run`
FALLBACK_INTENTS = ("nlu_fallback", "out_of_scope")  # Seamline's "not understood"
# Rasa's built-in actions: custom ones only when the domain lists them (the project's override).
BUILT_IN = ("action_listen", *DEFAULT_ACTIONS, *UNSUPPORTED_ACTIONS)
_ENV = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class RasaProject:
    path: Path
    language: str
    domain: Domain
    nlu: TrainingData
    action_endpoint: str  # endpoints.yml's action server webhook, or ""
    rest: bool  # credentials.yml has rest:
    stories: int

    @property
    def ignored(self) -> tuple[str, ...]:
        return self.domain.ignored


def load_rasa(path: Path, env: Mapping[str, str] | None = None) -> RasaProject:
    """The Rasa project at ``path``; a mistake is a ConfigError naming the file and the problem."""
    env = os.environ if env is None else env
    path = Path(path).resolve()
    if not path.is_dir():
        raise ConfigError(str(path), "is not a folder", "Pass the folder of a Rasa 3.x project (holding domain.yml)")
    config = _optional(path / "config.yml")
    language = str(config.get("language") or "en")
    rasa = read_domain(path)
    notes: list[str] = list(rasa.notes)
    if config.get("pipeline") or config.get("policies") or config.get("recipe"):
        notes.insert(0, "config.yml pipeline and policies (Seamline's own NLU and rules)")
    reader = Reader(set(rasa.responses), set(rasa.forms))
    nlu_dirs: list[Path] = []
    for file in _data_files(path / "data"):
        document = read_yaml(file)
        reader.add(str(file), document)
        if "nlu" in document and file.parent not in nlu_dirs:
            nlu_dirs.append(file.parent)
        if "responses" in document:
            notes.append(f"responses in {file.relative_to(path)} (retrieval intents)")
    rules = reader.result()
    fallback = _fallback_rule(rules.rules, notes)
    if rules.stories:
        notes.insert(0, f"{rules.stories} stor{'y' if rules.stories == 1 else 'ies'} (stories need ML policies)")
    notes += rules.notes
    nlu = _nlu(path, nlu_dirs, notes)
    if (path / "tests").is_dir():
        notes.append("tests/ (Rasa test stories; Seamline's conversation tests: seamline test)")
    endpoint, more = _endpoints(path / "endpoints.yml", env)
    rest, channels = _credentials(path / "credentials.yml")
    notes += more + channels
    domain = Domain(
        responses=_responses(rasa, language, fallback),
        intents=tuple(dict.fromkeys([*rasa.intents, *(r.intent for r in rules.rules if r.intent)])),
        entities=tuple(dict.fromkeys(rasa.entities)),
        slots=rasa.slots,
        forms=dict(rasa.forms),
        rules=tuple(rules.rules),
        actions=_custom_actions(rasa, rules.rules),
        answer_by_intent_name=False,
        ignored=tuple(dict.fromkeys(notes)),
        source=str(path),
    )
    return RasaProject(path, language, domain, nlu, endpoint, rest, rules.stories)


def run_settings(path: Path, env: Mapping[str, str]) -> tuple[Settings, RasaProject]:
    """Settings to serve the Rasa project at ``path`` with: no seamline.toml needed; the environment's
    SEAMLINE_* settings still win (SEAMLINE_DATA_DIR, SEAMLINE_PORT, SEAMLINE_ACTION_ENDPOINT, ...)."""
    project = load_rasa(path, env)
    environ = dict(env)
    defaults = {
        "SEAMLINE_DATA_DIR": str(project.path / ".seamline"),
        "SEAMLINE_CONFIG_DIR": str(FRAMEWORK_CONFIG),
        "SEAMLINE_PORT": RASA_PORT,
        "SEAMLINE_ACTION_ENDPOINT": project.action_endpoint,
    }
    environ.update({k: v for k, v in defaults.items() if not environ.get(k)})
    settings = load_settings(environ)
    remote = bool(settings.action_endpoint)
    return (
        replace(
            settings,
            rasa_project=project.path,
            default_language=environ.get("SEAMLINE_DEFAULT_LANGUAGE") or project.language,
            channels=_rest_channel(settings, project),
            # Rasa runs a project's actions on the action server endpoints.yml names; without one, they
            # run in this process from the project's actions/ package.
            project_dir=None if remote else project.path,
            actions_module="" if remote else environ.get("SEAMLINE_ACTIONS_MODULE") or "actions",
        ),
        project,
    )


def understand(project: RasaProject, settings: Settings) -> Understanding:
    """The classifier for the project's nlu: data: the newest model when it was trained on exactly
    this data, else one trained now (seconds for a small project) and kept for the next start."""
    from seamline.nlu.lifecycle import train_to
    from seamline.nlu.understanding import Understanding

    model, _trained = train_to(settings.models_dir, project.nlu, oos_recall=settings.oos_recall)
    return Understanding.from_file(model, order_pattern=settings.order_pattern, phone_region=settings.phone_region)


def describe(project: RasaProject, settings: Settings | None = None) -> list[str]:
    """What is said at start: what was read, where actions and REST clients go, and, once, what is
    not supported."""
    domain = project.domain
    own = len(domain.responses.keys() - set(FRAMEWORK_RESPONSES))
    lines = [
        f"Rasa project {project.path} ({project.language}): {len(domain.intents)} intents, {own} responses, "
        f"{len(domain.rules)} rules, {len(domain.forms)} forms, {len(domain.actions)} custom actions, "
        f"{len(project.nlu.all_examples)} NLU examples."
    ]
    if settings is not None:
        if domain.actions:
            where = settings.action_endpoint or f"in this process, from {project.path / settings.actions_module}"
            lines.append(f"Custom actions: {where}.")
        rest = settings.channels.get("rest")
        if rest is not None:
            anyone = " (no token: from this machine only)" if rest.get("allow_anonymous") else ""
            lines.append(f"REST channel: POST http://{settings.host}:{settings.port}/webhooks/rest/webhook{anyone}.")
    if project.ignored:
        lines.append("Ignored: " + ", ".join(project.ignored) + ".")
    return lines


# -- the project's files -------------------------------------------------------------------------------


def _optional(path: Path) -> dict[str, Any]:
    return read_yaml(path) if path.is_file() else {}


def _data_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def _nlu(path: Path, folders: list[Path], notes: list[str]) -> TrainingData:
    if not folders:
        raise ConfigError(
            str(path / "data"),
            "has no nlu: training data",
            "Add data/nlu.yml with - intent: <name> and examples: | (Rasa's format)",
        )
    data = TrainingData()
    for folder in folders:
        data = data.merge(load(folder))
    marked = {span[2] for e in data.all_examples for span in e.entities}
    unfound = sorted(marked - set(data.regexes) - set(data.lookups))
    if unfound:
        notes.append(
            f"entities marked in examples without a regex: or lookup: ({', '.join(unfound)}; Seamline finds "
            "entities by patterns, not by learning them)"
        )
    return data


def _endpoints(path: Path, env: Mapping[str, str]) -> tuple[str, list[str]]:
    data = _optional(path)
    notes = [f"endpoints.yml {key}" for key in data if key != "action_endpoint"]
    spec = data.get("action_endpoint")
    if not spec or env.get("SEAMLINE_ACTION_ENDPOINT"):  # the environment's wins, unread
        return "", notes
    url = spec.get("url") if isinstance(spec, dict) else None
    if not url:
        raise ConfigError(
            str(path), "action_endpoint has no url", "Write action_endpoint: {url: http://host:5055/webhook}"
        )
    unset = [name for name in _ENV.findall(str(url)) if not env.get(name)]
    if unset:
        raise ConfigError(
            str(path), f"action_endpoint url uses ${{{unset[0]}}}, which is not set", f"Set {unset[0]}, as for Rasa"
        )
    url = _ENV.sub(lambda m: env[m.group(1)], str(url))
    try:
        return action_endpoint_url(url), notes
    except ConfigError as exc:
        raise ConfigError(str(path), f"action_endpoint url: {exc.problem}", exc.fix) from None


def _credentials(path: Path) -> tuple[bool, list[str]]:
    data = _optional(path)
    notes = [
        f"credentials.yml {key} (Seamline's channels have their own settings: docs/channels.md)"
        for key in data
        if key not in ("rest", "rasa")
    ]
    return "rest" in data, notes


def _rest_channel(settings: Settings, project: RasaProject) -> dict[str, Any]:
    """credentials.yml's ``rest:`` turns the REST channel on. Rasa's has no token; Seamline's refuses
    requests without one, except from this machine: with no SEAMLINE_REST_TOKEN, anonymous requests are
    served only while Seamline listens on a loopback address (docs/rasa.md)."""
    channels = {name: dict(table) for name, table in settings.channels.items()}
    if not project.rest:
        return channels
    table = channels.setdefault("rest", {})
    env = settings.environ
    if env.get("SEAMLINE_REST_TOKEN") or table.get("token") or env.get("SEAMLINE_REST_ALLOW_ANONYMOUS"):
        return channels
    if not _loopback(settings.host):
        raise ConfigError(
            str(project.path / "credentials.yml"),
            f"rest: is on and Seamline listens on {settings.host}, beyond this machine, without a token",
            "Set SEAMLINE_REST_TOKEN (clients then send Authorization: Bearer <token>), or "
            "SEAMLINE_REST_ALLOW_ANONYMOUS=true behind your own authentication, or SEAMLINE_HOST=127.0.0.1",
        )
    table["allow_anonymous"] = True
    return channels


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- into Seamline's shapes ----------------------------------------------------------------------------


def _fallback_rule(rules: list[Rule], notes: list[str]) -> str | None:
    """A rule for ``nlu_fallback`` or ``out_of_scope`` answers what Seamline did not understand: its
    one response becomes what is said then (``utter_default``); any other such rule is reported."""
    said = None
    for rule in [r for r in rules if r.intent in FALLBACK_INTENTS]:
        rules.remove(rule)
        if said is None and not rule.when.slots and len(rule.then) == 1 and rule.then[0].kind == "response":
            said = rule.then[0].name
        else:
            notes.append(f"rule {rule.name!r} (not understood: Seamline says one response, {said or 'utter_default'})")
    return said


def _responses(rasa: RasaDomain, language: str, fallback: str | None = None) -> Responses:
    """The project's responses in its language, with the framework's texts it does not define;
    ``fallback``: the response said when a message is not understood (a rule for nlu_fallback)."""
    template = FRAMEWORK_CONFIG / "responses" / f"{language}.yml"
    if not template.is_file():
        template = FRAMEWORK_CONFIG / "responses" / "en.yml"
    framework = read_yaml(template).get("responses") or {}
    own = {key: framework[key] for key in FRAMEWORK_RESPONSES if key in framework}
    said = {"utter_default": rasa.responses[fallback]} if fallback else {}
    texts = {**own, **rasa.responses, **said}
    # A Rasa bot speaks one language: a customer whose messenger says another (a Telegram app in
    # English) still gets these, whichever language the session was given ("en" is the engine's last resort).
    return Responses({language: texts, "en": texts} if language != "en" else {language: texts})


def _custom_actions(rasa: RasaDomain, rules: list[Any]) -> tuple[str, ...]:
    named = [s.name for r in rules for s in r.then if s.kind == "action"]
    return tuple(
        name
        for name in dict.fromkeys([*rasa.actions, *named])
        if name not in rasa.responses
        and name not in rasa.forms
        and (name not in BUILT_IN or name in rasa.actions)
        and not name.startswith("utter_")
    )
