"""docs/build-your-bot.md is run, block by block, as a reader would follow it.

The comment above each code block says what to do with it:

    <!-- test: run -->            a shell block, run with bash in the reader's current folder (a ``cd``
                                  in it carries over to the next blocks)
    <!-- test: write PATH -->     the block is the file PATH of the project (the current folder)
    <!-- test: append PATH -->    the block is added at the end of PATH
    <!-- test: tree -->           a picture of the project: each line's first word is a path in it
    <!-- test: skip (REASON) -->  not run, and why

A block without such a comment fails the test, so nothing in the guide goes unchecked by accident.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "build-your-bot.md"
BLOCK = re.compile(
    r"(?:<!-- test: (?P<marker>[^\n]*?) -->\n)?```(?P<lang>[a-z]*)\n(?P<body>.*?)^```$", re.DOTALL | re.MULTILINE
)
TIMEOUT = 300  # seconds for any one block; only there so that a hang fails instead of blocking


def blocks() -> list[tuple[str, str, str]]:
    """(marker, language, body) of every fenced block in the guide, in order."""
    return [(m["marker"] or "", m["lang"], m["body"]) for m in BLOCK.finditer(GUIDE.read_text(encoding="utf-8"))]


def test_every_block_says_how_it_is_checked_and_parses():
    found = blocks()
    assert len(found) >= 10
    for marker, lang, body in found:
        assert re.fullmatch(r"run|tree|skip \(.+\)|(write|append) \S+", marker), (
            f"block without a test comment:\n{body}"
        )
        if lang == "yaml":
            assert yaml.safe_load(body) is not None
        elif lang == "toml":
            tomllib.loads(body)
        elif lang == "python":
            compile(body, "build-your-bot.md", "exec")
        elif marker == "run":
            assert lang == "sh"


def test_the_links_point_at_files_that_exist():
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", GUIDE.read_text(encoding="utf-8")):
        assert (GUIDE.parent / target).exists(), target


@pytest.mark.slow  # real seamline commands: init, nlu train, shell, and pytest in the new project
def test_following_the_guide_gives_a_bot_that_passes_its_tests(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMLINE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # seamline and pytest
    env["PYTHONUNBUFFERED"] = "1"
    here, state = tmp_path, tmp_path / ".where"
    for marker, _lang, body in blocks():
        action, _, argument = marker.partition(" ")
        if action == "run":
            done = subprocess.run(
                ["bash", "-e", "-c", f"{body}\npwd > {state}"],
                cwd=here,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
            assert done.returncode == 0, f"{body}\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr, done.stderr
            here = Path(state.read_text().strip())
        elif action in ("write", "append"):
            target = here / argument
            assert action == "write" or target.is_file(), f"{target} should exist before appending to it"
            before = target.read_text(encoding="utf-8") if action == "append" else ""
            target.write_text(before + ("" if before.endswith("\n") or not before else "\n") + body, encoding="utf-8")
        elif action == "tree":  # the first line is the project's own folder, the one we are in
            for line in body.splitlines()[1:]:
                assert (here / line.split()[0].rstrip(",")).exists(), line
    assert (here / "var" / "models").is_dir()  # the reader ended in the project, which holds its data
