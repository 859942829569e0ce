"""The ``seamline`` command as a user runs it: the real console script in a subprocess.

Every subprocess has a timeout and none outlives its test. Each start costs seconds (imports,
training the intent model), so there are few of them.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from seamline.shared.settings import CONFIG_DIR

from tests.conftest import _postgres_admin, _run_async, _service
from tests.support import free_port

pytestmark = pytest.mark.slow

SEAMLINE = Path(sys.executable).with_name("seamline")
TIMEOUT = 180  # seconds; generous, only there so that a hang fails instead of blocking the run


@pytest.fixture
def env(tmp_path: Path, models_dir: Path) -> dict[str, str]:
    """The user's environment with no Seamline settings but where the data and the trained model live."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEAMLINE_")}
    clean["SEAMLINE_CONFIG_DIR"] = str(CONFIG_DIR)  # the retail template's config; no project in tmp_path
    clean["SEAMLINE_NLU_MODELS"] = str(models_dir)
    clean["SEAMLINE_DATA_DIR"] = str(tmp_path / "var")
    clean["SEAMLINE_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/var/seamline.db"
    clean["PYTHONUNBUFFERED"] = "1"
    return clean


def seamline(args: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SEAMLINE), *args], input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=TIMEOUT
    )


def test_help_lists_the_commands(env, tmp_path):
    done = seamline(["--help"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    for command in ("init", "run", "shell", "db"):
        assert re.search(rf"^\s+{command}\s", done.stdout, re.MULTILINE), done.stdout


def test_db_upgrade_creates_the_database_and_is_harmless_to_repeat(env, tmp_path):
    database = tmp_path / "fresh" / "nested" / "seamline.db"
    env["SEAMLINE_DATABASE_URL"] = f"sqlite+aiosqlite:///{database}"

    first = seamline(["db", "upgrade"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert database.exists()
    head = sorted(
        p.name[:4]
        for p in (Path(__file__).resolve().parents[2] / "shared" / "storage" / "migrations" / "versions").glob("0*.py")
    )[-1]
    assert f"database schema: {head} (latest: {head})" in first.stdout

    again = seamline(["db", "upgrade"], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"database schema: {head} (latest: {head})" in again.stdout
    assert "Traceback" not in first.stderr + again.stderr


def test_a_bad_setting_exits_2_with_the_fix_and_no_traceback(env, tmp_path):
    env["SEAMLINE_PORT"] = "abc"
    done = seamline(["run"], env, tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if "SEAMLINE_PORT" in line]
    assert lines, done.stderr
    assert "not a whole number" in lines[0] and "SEAMLINE_PORT=8080" in lines[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "var" / "seamline.db").exists()  # nothing started


def test_run_refuses_an_unmigrated_postgresql_database(env, tmp_path):
    admin = _service("SEAMLINE_TEST_DATABASE_URL")
    dsn = admin.replace("postgresql+asyncpg", "postgresql")
    name = f"t_{uuid.uuid4().hex[:12]}"
    _run_async(_postgres_admin(dsn, f'CREATE DATABASE "{name}"'))
    try:
        env["SEAMLINE_DATABASE_URL"] = admin.rsplit("/", 1)[0] + "/" + name
        done = seamline(["run"], env, tmp_path)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "SEAMLINE_DATABASE_URL" in done.stderr
        assert "seamline db upgrade" in done.stderr
        assert "Traceback" not in done.stderr
        assert "Seamline is running" not in done.stdout
    finally:
        _run_async(_postgres_admin(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def test_run_serves_on_embedded_defaults_reloads_its_model_on_sighup_and_stops_on_ctrl_c(env, tmp_path):
    port = free_port()
    del env["SEAMLINE_DATABASE_URL"]  # the embedded default, relative to the working directory
    models = tmp_path / "models"  # a copy: a newer model is added below
    shutil.copytree(env["SEAMLINE_NLU_MODELS"], models)
    env["SEAMLINE_NLU_MODELS"] = str(models)
    env["SEAMLINE_PORT"] = str(port)
    url = f"http://127.0.0.1:{port}/"
    with open(tmp_path / "stderr.log", "w") as stderr:
        process = subprocess.Popen(
            [str(SEAMLINE), "run"], stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=tmp_path
        )
    try:
        out: queue.Queue = queue.Queue()
        threading.Thread(target=_lines, args=(process.stdout, out), daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while not any(f"Open {url}" in line for line in seen):
            try:
                line = out.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no 'Open {url}' line within 60 s; stdout: {seen}")
            if line is None:
                pytest.fail(f"seamline run exited ({process.wait()}): {seen}\n{(tmp_path / 'stderr.log').read_text()}")
            seen.append(line)

        # The announcement may come a moment before the port is bound: retry refused connections briefly.
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(url + "healthz", timeout=10) as response:
                    status = response.status
                break
            except urllib.error.URLError as exc:
                if not isinstance(exc.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert status == 200
        assert (tmp_path / "var" / "seamline.db").exists()

        # A newer model appears (as "seamline nlu train" writes one); kill -HUP serves it, no restart
        current = sorted(models.glob("nlu-*.npz"))[-1]
        newer = models / ("nlu-29991231T235959000000Z-" + current.name.rsplit("-", 1)[1])
        shutil.copy(current, newer)
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while f"NLU model reloaded from {newer}" not in (tmp_path / "stderr.log").read_text():
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "stderr.log").read_text()
            time.sleep(0.1)
        with urllib.request.urlopen(url + "healthz", timeout=10) as response:
            assert response.status == 200

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) in (0, 130, -signal.SIGINT)
        assert "Traceback" not in (tmp_path / "stderr.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=15)
        if process.stdout:
            process.stdout.close()


def test_shell_chats_through_the_pipeline(env, tmp_path):
    done = seamline(["shell"], env, tmp_path, stdin="hello\nwhere is my order\n12345\n/quit\n")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    answers = re.findall(r"bot> (.*)", done.stdout)
    assert len(answers) >= 3, done.stdout
    assert "12345" in answers[-1]


def test_run_without_a_trained_model_names_the_file_and_the_command(env, tmp_path):
    env["SEAMLINE_NLU_MODELS"] = str(tmp_path / "no-models")
    done = seamline(["run"], env, tmp_path)
    assert done.returncode == 1, done.stderr
    assert str(tmp_path / "no-models") in done.stderr and "Run: seamline nlu train" in done.stderr
    assert "Traceback" not in done.stderr


def test_run_on_a_port_in_use_says_so_and_exits_2(env, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env["SEAMLINE_PORT"] = str(taken.getsockname()[1])
        done = seamline(["run"], env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "SEAMLINE_PORT: cannot listen on 127.0.0.1:" in done.stderr and "Traceback" not in done.stderr
    assert "Seamline is running" not in done.stdout  # never announced before the port is bound
