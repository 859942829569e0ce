"""A bot project of one's own: ``seamline init`` and the commands that work on a project.

The commands run in process (``cli.main``) for speed; tests/test_wheel.py runs the same path with
the installed console script.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seamline.bots import cli
from seamline.bots.project import FRAMEWORK_RESPONSES, TEMPLATES, TEMPLATES_DIR
from seamline.shared.settings import CONFIG_DIR


@pytest.fixture(autouse=True)
def no_seamline_environment(monkeypatch):
    """A bot author's shell: no SEAMLINE_ variable, and sys.path restored after each test."""
    for name in [n for n in os.environ if n.startswith("SEAMLINE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "path", list(sys.path))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_init_writes_a_project_with_config_actions_tests_readme_and_gitignore(tmp_path, capsys):
    assert cli.main(["init", str(tmp_path / "mybot")]) == 0
    files = set(snapshot(tmp_path / "mybot"))
    assert {
        "config/seamline.toml",
        "config/routing.yml",
        "config/canned.yml",
        "config/domain.yml",
        "config/rules.yml",
        "config/intents/minimal.en.yml",
        "config/intents/minimal.ru.yml",
        "config/responses/en.yml",
        "config/responses/ru.yml",
        "actions/__init__.py",
        "tests/test_conversations.py",
        "tests/conversations.yml",
        "README.md",
        ".gitignore",
    } == files
    readme = (tmp_path / "mybot" / "README.md").read_text()
    assert "# mybot" in readme and "seamline nlu train" in readme and "pytest" in readme and "{{" not in readme
    assert "var/" in (tmp_path / "mybot" / ".gitignore").read_text().split()
    assert "cd " in capsys.readouterr().out  # what to do next


def test_the_retail_template_is_the_demo_shop(tmp_path):
    assert cli.main(["init", str(tmp_path / "shop"), "--template", "retail"]) == 0
    config = tmp_path / "shop" / "config"
    assert (config / "intents" / "retail.en.yml").read_bytes() == (
        CONFIG_DIR / "intents" / "retail.en.yml"
    ).read_bytes()
    assert (config / "routing.yml").read_bytes() == (CONFIG_DIR / "routing.yml").read_bytes()
    assert not (config / "templates").exists() and not (config / "__init__.py").exists()


@pytest.mark.parametrize("languages, kept, default", [("en", "en", "en"), ("ru", "ru", "ru"), ("ru,en", "ru en", "ru")])
def test_language_limits_the_files_and_sets_the_default(tmp_path, languages, kept, default):
    assert cli.main(["init", str(tmp_path / "bot"), "--language", languages]) == 0
    config = tmp_path / "bot" / "config"
    assert sorted(p.stem for p in (config / "responses").glob("*.yml")) == sorted(kept.split())
    assert sorted(p.name.split(".")[1] for p in (config / "intents").glob("*.yml")) == sorted(kept.split())
    assert f'default_language = "{default}"' in (config / "seamline.toml").read_text()
    conversations = yaml.safe_load((tmp_path / "bot" / "tests" / "conversations.yml").read_text())["conversations"]
    assert conversations and {c["language"] for c in conversations} == set(kept.split())


def test_an_unknown_language_is_refused_naming_the_option(tmp_path, capsys):
    assert cli.main(["init", str(tmp_path / "bot"), "--language", "de"]) == 2
    assert "--language: 'de' is not a list of supported languages" in capsys.readouterr().err
    assert not (tmp_path / "bot").exists()


def test_init_on_a_folder_that_is_not_empty_refuses_and_changes_nothing(tmp_path, capsys):
    assert cli.main(["init", str(tmp_path / "mybot")]) == 0
    (tmp_path / "mybot" / "config" / "intents" / "minimal.en.yml").write_text("language: en\n# my own edits\n")
    before, around = snapshot(tmp_path / "mybot"), sorted(p.name for p in tmp_path.iterdir())
    capsys.readouterr()
    assert cli.main(["init", str(tmp_path / "mybot"), "--template", "retail"]) == 2
    err = capsys.readouterr().err
    assert "already exists and is not empty; nothing was changed" in err and "Traceback" not in err
    assert snapshot(tmp_path / "mybot") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == around  # no half-written draft left beside it


def test_init_into_an_empty_folder_is_fine(tmp_path):
    (tmp_path / "bot").mkdir()
    assert cli.main(["init", str(tmp_path / "bot")]) == 0
    assert (tmp_path / "bot" / "config" / "seamline.toml").is_file()


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_carries_the_framework_texts_in_every_language(template):
    config = CONFIG_DIR if template == "retail" else TEMPLATES_DIR / template
    for path in sorted((config / "responses").glob("*.yml")):
        responses = yaml.safe_load(path.read_text(encoding="utf-8"))["responses"]
        missing = [key for key in FRAMEWORK_RESPONSES if not responses.get(key)]
        assert not missing, f"{path} lacks {missing}"


def test_outside_a_project_a_command_says_how_to_make_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run"]) == 2
    err = capsys.readouterr().err
    assert "no bot project here" in err and "seamline init mybot" in err and "--project" in err
    assert not (tmp_path / "var").exists()


def test_a_folder_that_is_not_a_project_is_refused_as_project(tmp_path, capsys):
    assert cli.main(["--project", str(tmp_path), "db", "current"]) == 2
    assert "--project: " in capsys.readouterr().err


@pytest.mark.parametrize("where", ["before", "after"])
def test_project_option_before_or_after_the_command_keeps_data_and_models_in_the_project(
    tmp_path, monkeypatch, capsys, where
):
    project = tmp_path / "mybot"
    assert cli.main(["init", str(project), "--language", "en"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    option = ["--project", str(project)]
    argv = [*option, "nlu", "train"] if where == "before" else ["nlu", "train", *option]
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert list((project / "var" / "models").glob("nlu-*.npz"))
    assert list(elsewhere.iterdir()) == []  # nothing written where the command was typed
    assert sys.path[0] == str(project)  # the project's actions/ and own modules import


def test_from_inside_a_project_folder_the_project_is_found(tmp_path, monkeypatch, capsys):
    project = tmp_path / "mybot"
    assert cli.main(["init", str(project), "--language", "en"]) == 0
    (project / "actions" / "greeting.py").write_text("WORDS = 'hello from the project'\n")
    monkeypatch.chdir(project / "actions")
    assert cli.main(["db", "upgrade"]) == 0
    assert (project / "var" / "seamline.db").is_file()
    __import__("importlib").invalidate_caches()
    sys.modules.pop("actions", None)
    from actions import greeting

    assert greeting.WORDS == "hello from the project"
    sys.modules.pop("actions", None)
    sys.modules.pop("actions.greeting", None)


def test_seamline_config_dir_still_names_the_config_outside_a_project(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEAMLINE_CONFIG_DIR", str(CONFIG_DIR))
    monkeypatch.setenv("SEAMLINE_DATA_DIR", str(tmp_path / "data"))
    assert cli.main(["db", "upgrade"]) == 0
    assert (tmp_path / "data" / "seamline.db").is_file()


@pytest.mark.slow  # a pytest process inside the new project
@pytest.mark.parametrize("template", TEMPLATES)
def test_a_new_project_passes_its_own_conversation_tests(tmp_path, template):
    project = tmp_path / "bot"
    assert cli.main(["init", str(project), "--template", template]) == 0
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_the_project_folder_is_made_as_any_folder_of_the_user(tmp_path):
    old = os.umask(0o022)
    try:
        assert cli.main(["init", str(tmp_path / "bot")]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "bot").stat().st_mode & 0o777 == 0o755  # not a private temporary folder renamed


def test_a_place_that_cannot_be_written_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    assert cli.main(["init", str(tmp_path / "file" / "bot")]) == 2
    err = capsys.readouterr().err
    assert "seamline init: cannot write" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_project_option_wins_over_seamline_config_dir(tmp_path, monkeypatch, capsys):
    project = tmp_path / "mybot"
    assert cli.main(["init", str(project), "--language", "ru"]) == 0
    monkeypatch.setenv("SEAMLINE_CONFIG_DIR", str(CONFIG_DIR))  # the retail shop, in English by default
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--project", str(project), "nlu", "train"]) == 0
    out = capsys.readouterr().out
    assert "from 1 file(s)" in out  # the project's minimal.ru.yml, not the retail config's two files
    assert list((project / "var" / "models").glob("nlu-*.npz"))


def test_the_framework_texts_list_names_every_response_the_code_says_by_name():
    """FRAMEWORK_RESPONSES must not drift from the code: a key the framework renders by name is in it,
    except the retail order form's (only an order_status intent starts that form)."""
    root = Path(__file__).resolve().parents[2]
    said = set()
    for source in [*root.glob("bots/**/*.py"), *root.glob("handoff/**/*.py")]:
        said |= set(re.findall(r"(?:render|say|phrase)\(\s*\"([a-z_]+)\"", source.read_text(encoding="utf-8")))
    assert said, "the pattern no longer finds how the code says a response"
    assert said - {"order_status", "ask_order_number"} <= set(FRAMEWORK_RESPONSES)


def test_init_dot_in_the_empty_folder_one_is_in_fills_that_very_folder(tmp_path, monkeypatch):
    (tmp_path / "mybot").mkdir()
    inode = (tmp_path / "mybot").stat().st_ino
    monkeypatch.chdir(tmp_path / "mybot")
    assert cli.main(["init", "."]) == 0
    assert Path(".").stat().st_ino == inode  # the shell that typed it still sees the files
    assert sorted(p.name for p in Path(".").iterdir()) == [".gitignore", "README.md", "actions", "config", "tests"]


def test_the_templates_share_one_seamline_toml():
    """Settings are the framework's, not the template's: one file, so the two cannot drift apart."""
    assert (TEMPLATES_DIR / "minimal" / "seamline.toml").read_bytes() == (CONFIG_DIR / "seamline.toml").read_bytes()


def test_load_settings_in_a_bots_own_code_finds_its_project(tmp_path, monkeypatch):
    from seamline import load_settings

    project = tmp_path / "mybot"
    assert cli.main(["init", str(project), "--language", "en"]) == 0
    monkeypatch.chdir(project / "actions")
    settings = load_settings()
    assert (settings.config_dir, settings.data_dir) == (project / "config", project / "var")
