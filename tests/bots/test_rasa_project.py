"""Rasa 3.x projects served unchanged: ``seamline run --rasa-project PATH`` as a user runs it (the real
console script, a real ``python -m rasa_sdk`` action server), answered over Rasa's REST webhook with
the answers Rasa's rules give. The projects are tests/fixtures/rasa/ (a ``rasa init`` project with rules
only, and a trattoria whose rules call custom actions and run a form), each run from a copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from seamline.bots.dialogue.rasa import run_settings

from tests.conftest import Server
from tests.support import free_port, start_action_server

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rasa"
SEAMLINE = Path(sys.executable).with_name("seamline")
TIMEOUT = 120  # seconds: only there so that a hang fails instead of blocking the run


def copy(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / name
    shutil.copytree(FIXTURES / name, folder, ignore=shutil.ignore_patterns(".seamline", "__pycache__"))
    return folder


def environment(**more: str) -> dict[str, str]:
    """The user's environment without Seamline settings: the project says everything."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMLINE_")}
    return {**env, "PYTHONUNBUFFERED": "1", **more}


def say(url: str, sender: str, text: str) -> list[dict]:
    """What a Rasa REST client gets for one message (it sends JSON, as Rasa's clients do)."""
    body = json.dumps({"sender": sender, "message": text}).encode()
    request = urllib.request.Request(
        f"{url}/webhooks/rest/webhook", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        answer: list[dict] = json.loads(response.read())
        return answer


def texts(answer: list[dict]) -> list[str]:
    return [item["text"] for item in answer if "text" in item]


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _wait_for_http(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (urllib.error.URLError, ConnectionError) as exc:
            if process.poll() is not None:
                pytest.fail(f"{process.args} exited ({process.returncode}): {log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{url} did not answer within 60 s ({exc}): {log.read_text()}")
            time.sleep(0.2)


@contextlib.contextmanager
def running(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A process for the test's duration; stopped (and reaped) whatever happens."""
    with open(log, "w") as stderr:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=cwd)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        if process.stdout:
            process.stdout.close()


@contextlib.contextmanager
def seamline_run(project: Path, tmp_path: Path, **env: str) -> Iterator[tuple[str, list[str], Path]]:
    """``seamline run --rasa-project .`` from the project's folder: (its URL, its stdout lines up to
    "Seamline is running", its stderr log)."""
    port = free_port()
    log = tmp_path / "seamline.log"
    args = [str(SEAMLINE), "run", "--rasa-project", "."]
    with running(args, project, environment(SEAMLINE_PORT=str(port), **env), log) as process:
        out: queue.Queue = queue.Queue()
        threading.Thread(target=_lines, args=(process.stdout, out), daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + TIMEOUT
        while not any("Seamline is running" in line for line in seen):
            try:
                line = out.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"not running within {TIMEOUT} s; stdout: {seen}\n{log.read_text()}")
            if line is None:
                pytest.fail(f"seamline run exited ({process.wait()}): {seen}\n{log.read_text()}")
            seen.append(line)
        url = f"http://127.0.0.1:{port}"
        _wait_for_http(f"{url}/healthz", process, log)
        yield url, seen, log


def test_the_rasa_init_project_answers_as_its_rules_say(tmp_path):
    project = copy("init", tmp_path)
    with seamline_run(project, tmp_path) as (url, seen, log):
        assert texts(say(url, "ada", "hello")) == ["Hello! How is your day going?"]
        assert texts(say(url, "ada", "are you a bot?")) == ["Yes, I am a bot, made with Rasa."]
        sad = say(url, "ada", "I feel sad")
        assert texts(sad) == ["Sorry to hear that. Maybe this picture helps a little:", "Did that cheer you up?"]
        assert {"recipient_id": "ada", "image": "https://example.org/pictures/otter-pup.jpg"} in sad
        assert texts(say(url, "ada", "yes")) == ["Wonderful, keep that mood going!"]
        assert texts(say(url, "ada", "bye")) == ["Goodbye, talk to you soon!"]
    ignored = [line for line in seen if line.startswith("Ignored:")]
    assert len(ignored) == 1 and "config.yml pipeline and policies" in ignored[0]
    assert "session_config" in ignored[0]
    assert len(list((project / ".seamline" / "models").glob("nlu-*.npz"))) == 1  # trained at start, kept
    assert "Traceback" not in log.read_text()


def test_a_project_whose_rules_call_custom_actions_on_rasas_action_server(tmp_path):
    project = copy("custom_action", tmp_path)
    with start_action_server(project) as webhook:  # Rasa's own, from the project's folder
        endpoints = (project / "endpoints.yml").read_text()
        (project / "endpoints.yml").write_text(endpoints.replace("http://localhost:5055/webhook", webhook))
        with seamline_run(project, tmp_path) as (url, seen, log):
            assert say(url, "bo", "hello") == [
                {
                    "recipient_id": "bo",
                    "text": "Welcome to Trattoria Seamline! Ask about our opening hours or book a table.",
                    "buttons": [
                        {"title": "Opening hours", "payload": "/ask_opening_hours"},
                        {"title": "Book a table", "payload": "/book_table"},
                    ],
                }
            ]
            # the action's dispatcher messages: a text, and a response of the domain
            assert texts(say(url, "bo", "when are you open?")) == [
                "We are open every day from 12:00 to 23:00.",
                "Anything else I can do for you?",
            ]
            # the form: its questions, an interruption, validate_booking_form refusing, the submission
            assert texts(say(url, "bo", "/book_table")) == ["For how many people?"]  # the button pressed
            assert texts(say(url, "bo", "are you a bot?")) == ["I am the trattoria's bot.", "For how many people?"]
            assert texts(say(url, "bo", "lots")) == [
                "We seat from 1 to 12 people at a table; please give a number.",
                "For how many people?",
            ]
            assert texts(say(url, "bo", "4 people")) == ["Under what name shall I book it?"]
            assert texts(say(url, "bo", "Ada Lovelace")) == [
                "Booked: a table for 4 under the name Ada Lovelace.",
                "Anything else I can do for you?",
            ]
            assert texts(say(url, "bo", "bye")) == ["Ciao, see you soon!"]
    ignored = [line for line in seen if line.startswith("Ignored:")]
    assert len(ignored) == 1 and ignored[0].startswith("Ignored: 2 stories (stories need ML policies)")
    assert "endpoints.yml tracker_store" in ignored[0]
    assert f"Custom actions: {webhook}.\n" in seen
    assert "Traceback" not in log.read_text()


def test_a_broken_domain_stops_the_start_naming_the_file_and_the_problem(tmp_path):
    project = copy("init", tmp_path)
    domain = project / "domain.yml"
    domain.write_text(domain.read_text().replace("responses:", "responses:\n  utter_oops: just a text"))
    done = subprocess.run(
        [str(SEAMLINE), "run", "--rasa-project", str(project)],
        capture_output=True,
        text=True,
        env=environment(SEAMLINE_PORT=str(free_port())),
        cwd=tmp_path,
        timeout=TIMEOUT,
    )
    assert done.returncode == 2, done.stderr  # a configuration error, as every other one
    assert f"{domain}: response 'utter_oops' is not a list of variants" in done.stderr
    assert "Traceback" not in done.stderr and "Seamline is running" not in done.stdout


async def test_without_an_action_server_the_actions_run_in_process(tmp_path, sqlite_url, http):
    """The same project with no action_endpoint: its actions/ package runs inside Seamline."""
    project = copy("custom_action", tmp_path)
    (project / "endpoints.yml").unlink()
    settings, _ = run_settings(project, environment())
    # no model given: the app trains one from the project's nlu.yml, as `seamline run` does
    server = await Server(replace(settings, database_url=sqlite_url, port=0), None).start()

    async def chat(text: str) -> list[str]:
        body = {"sender": "cy", "message": text}
        async with http.post(f"{server.url}/webhooks/rest/webhook", json=body) as response:
            assert response.status == 200
            return texts(await response.json())

    try:
        assert await chat("what are your opening hours?") == [
            "We are open every day from 12:00 to 23:00.",
            "Anything else I can do for you?",
        ]
        assert await chat("book a table please") == ["For how many people?"]
        assert await chat("2") == ["Under what name shall I book it?"]
        assert await chat("Grace") == ["Booked: a table for 2 under the name Grace.", "Anything else I can do for you?"]
    finally:
        await server.stop()
