"""A bot project: the folder of a bot built with Seamline, outside the framework.

    mybot/
      config/        seamline.toml, intents/, responses/, routing.yml, canned.yml
      actions/       the project's own Python (custom actions; its folder is on sys.path)
      tests/         conversation scripts (tests/conversations/, run by `seamline test` and pytest)
      var/           the database, the secret key and the trained models (not in git)

``seamline init`` writes one from a template; every other command finds the project it works on
(``resolve``) so a bot author never edits or even sees the framework's files. The templates ship inside
the package: ``retail`` is this repository's own ``config/`` (the demo shop), ``minimal`` lives in
``config/templates/minimal/``, and ``config/templates/project/`` holds the files every project gets.

Framework texts (link codes, handoff notices, "did not understand", ratings) are carried by the
template into the project's ``config/responses``: the author sees and words every sentence the bot
can say. ``FRAMEWORK_RESPONSES`` names them; each template has them all in every language (tested).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

import yaml

from seamline.shared.errors import ConfigError
from seamline.shared.settings import CONFIG_DIR, LANGUAGES, PROJECT_MARKER, find_project

TEMPLATES_DIR = CONFIG_DIR / "templates"
TEMPLATES = ("minimal", "retail")
MARKER = PROJECT_MARKER  # config/seamline.toml: what makes a folder a bot project

# Responses the framework itself says, whatever the bot's intents (see the module docstring).
FRAMEWORK_RESPONSES = (
    "fallback",
    "fallback_offer_human",
    "action_failed",
    "form_cancelled",
    "link_account",
    "link_rate_limited",
    "link_done",
    "link_done_context",
    "link_already",
    "link_invalid",
    "link_expired",
    "link_used",
    "link_locked",
    "link_where",
    "link_nowhere",
    "link_pending",
    "link_question",
    "link_confirmed",
    "link_declined",
    "link_not_confirmed",
    "link_stale",
    "topics",
    "channel_buttons",
    "channels",
    "handoff_queued",
    "handoff_position",
    "handoff_assigned",
    "handoff_after_hours",
    "handoff_transferred",
    "handoff_requeued",
    "handoff_back_to_bot",
    "handoff_rate",
    "handoff_rated",
)

NO_PROJECT_FIX = "Run `seamline init mybot` or pass --project"


def resolve(explicit: Path | None, env: dict[str, str], cwd: Path) -> Path | None:
    """The project a command works on: --project, else none when SEAMLINE_CONFIG_DIR names the config
    (the older way, kept), else the working directory or a folder above it."""
    if explicit is not None:
        if not (explicit / MARKER).is_file():
            raise ConfigError(
                "--project",
                f"{explicit} is not a bot project (it has no {MARKER})",
                "Pass the folder `seamline init` made (the one holding config/)",
            )
        return explicit.resolve()
    if env.get("SEAMLINE_CONFIG_DIR"):
        return None
    project = find_project(cwd)
    if project is None:
        raise ConfigError("no bot project here", f"no {MARKER} in {cwd} or a folder above it", NO_PROJECT_FIX)
    return project


def languages(raw: str) -> tuple[str, ...]:
    """``ru,en`` -> ('ru', 'en'): the first is the bot's default language."""
    chosen = tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))
    wrong = [lang for lang in chosen if lang not in LANGUAGES]
    if not chosen or wrong:
        raise ConfigError(
            "--language",
            f"{raw!r} is not a list of supported languages",
            "Use ru, en or ru,en (the first is the default language)",
        )
    return chosen


def init(path: Path, *, template: str = "minimal", langs: tuple[str, ...] = ("en", "ru")) -> Path:
    """Write a new project at ``path`` and return it. An existing non-empty folder is refused and left
    exactly as it was; the project appears whole or not at all (written aside, then renamed)."""
    if template not in TEMPLATES:
        raise ConfigError("--template", f"{template!r} is not a template", f"Use one of: {', '.join(TEMPLATES)}")
    path = path.resolve()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ConfigError(
            "seamline init",
            f"{path} already exists and is not empty; nothing was changed",
            "Choose a new folder, e.g. seamline init mybot",
        )
    # Written aside on the same disk, then renamed into place. An empty folder that exists (often the
    # one the author is in: `mkdir mybot && cd mybot && seamline init .`) is kept and filled.
    existing = path.exists()
    token = secrets.token_hex(4)
    draft = path / f".seamline-init-{token}" if existing else path.parent / f".{path.name}-{token}"
    moved: list[Path] = []
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        draft.mkdir()  # the user's umask, as any folder they make
        _write(draft, template, langs, name=path.name)
        if existing:
            for child in sorted(draft.iterdir()):
                os.rename(child, path / child.name)
                moved.append(path / child.name)
            draft.rmdir()
        else:
            os.rename(draft, path)
    except OSError as exc:
        shutil.rmtree(draft, ignore_errors=True)
        for child in moved:  # a half-filled folder is put back as it was: empty
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        raise ConfigError(
            "seamline init",
            f"cannot write {path} ({exc.strerror or exc})",
            "Choose a folder you can write to, e.g. seamline init mybot",
        ) from exc
    except BaseException:
        shutil.rmtree(draft, ignore_errors=True)
        raise
    return path


def _write(root: Path, template: str, langs: tuple[str, ...], *, name: str) -> None:
    source = CONFIG_DIR if template == "retail" else TEMPLATES_DIR / template
    extras = TEMPLATES_DIR / template  # its conversation scripts (and, for minimal, the config itself)
    config = root / "config"
    shutil.copytree(source, config, ignore=_not_config)
    for file in [*config.glob("intents/*.*.yml"), *config.glob("responses/*.yml")]:
        lang = file.name.split(".")[-2]
        if lang in LANGUAGES and lang not in langs:
            file.unlink()
    toml = config / "seamline.toml"
    toml.write_text(
        re.sub(
            r'^default_language = "\w+"',
            f'default_language = "{langs[0]}"',
            toml.read_text(encoding="utf-8"),
            count=1,
            flags=re.MULTILINE,
        ),
        encoding="utf-8",
    )
    _write_conversations(extras, root / "tests", langs)
    common = TEMPLATES_DIR / "project"
    for file in common.rglob("*.tmpl"):
        target = root / file.relative_to(common).with_suffix("")
        target = target.with_name("." + target.name[len("dot-") :]) if target.name.startswith("dot-") else target
        target.parent.mkdir(parents=True, exist_ok=True)
        text = file.read_text(encoding="utf-8")
        for key, value in {
            "name": name,
            "template": template,
            "languages": ", ".join(langs),
            "language": langs[0],
        }.items():
            text = text.replace("{{" + key + "}}", value)
        target.write_text(text, encoding="utf-8")
    _write_actions(extras / "actions", root / "actions", toml)


def _write_actions(source: Path, actions: Path, toml: Path) -> None:
    """A template's example actions (retail's) become the project's own actions/ package; every project
    loads its actions from there (``[actions] module = "actions"``; the templates' seamline.toml names
    the package's copy, for Seamline's own repository): the author reads and changes them like any of
    their code."""
    if (source / "__init__.py").is_file():
        shutil.copytree(source, actions, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    toml.write_text(
        re.sub(
            r'^module = "[\w.]+"',
            'module = "actions"',
            toml.read_text(encoding="utf-8"),
            count=1,
            flags=re.MULTILINE,
        ),
        encoding="utf-8",
    )


def _write_conversations(template: Path, tests: Path, langs: tuple[str, ...]) -> None:
    """The template's conversation scripts (``seamline test``), in the chosen languages only: a
    ``conversations/`` folder of ``<language>.yml`` files is copied to tests/conversations/; the older
    single ``conversations.yml`` is written to tests/ without the other languages' conversations."""
    tests.mkdir()
    folder = template / "conversations"
    if folder.is_dir():
        (tests / "conversations").mkdir()
        for file in sorted(folder.glob("*.yml")):
            if file.stem not in LANGUAGES or file.stem in langs:
                shutil.copyfile(file, tests / "conversations" / file.name)
        return
    source = template / "conversations.yml"
    conversations = yaml.safe_load(source.read_text(encoding="utf-8"))
    kept = [c for c in conversations["conversations"] if c.get("language") in langs]
    header = "".join(line for line in source.read_text(encoding="utf-8").splitlines(True) if line.startswith("#"))
    (tests / "conversations.yml").write_text(
        header
        + yaml.dump(
            {"conversations": kept},
            Dumper=_Indented,
            allow_unicode=True,
            sort_keys=False,
            width=1000,
            default_flow_style=None,
        ),
        encoding="utf-8",
    )


class _Indented(yaml.SafeDumper):
    """Lists indented under their key, as people write YAML: an entry appended by hand with the
    indentation of the guide (docs/build-your-bot.md) lands in the right list."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _not_config(folder: str, names: list[str]) -> set[str]:
    """What a template folder holds besides a project's config/: the package's own files, the other
    templates, the conversation tests (written to tests/)."""
    return {n for n in names if n in ("__init__.py", "__pycache__", "templates", "conversations.yml")}
