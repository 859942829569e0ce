"""The data directory holds password hashes, tokens and every conversation: a fresh start leaves it
0700 and the SQLite database (and its -wal/-shm files) 0600, whatever the umask; an older 0644
database is tightened at the next start."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from seamline.bots.app import SEAMLINE, create_app
from seamline.shared.message import Message
from seamline.shared.settings import load_settings
from seamline.shared.storage.database import upgrade

SEAMLINE_COMMAND = Path(sys.executable).with_name("seamline")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)  # the usual umask: files 0644, directories 0755 unless Seamline says otherwise
    yield
    os.umask(old)


def _clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMLINE_")}
    return {**env, **values, "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow  # a real seamline process
def test_a_fresh_seamline_makes_its_data_dir_private(tmp_path, loose_umask):
    data = tmp_path / "var"
    result = subprocess.run(
        [str(SEAMLINE_COMMAND), "db", "upgrade"],
        env=_clean_env(SEAMLINE_DATA_DIR=str(data)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert mode(data) == 0o700
    assert mode(data / "seamline.db") == 0o600
    assert mode(data / "secret_key") == 0o600


async def test_a_fresh_data_dir_keeps_the_database_and_its_wal_private_while_serving(
    tmp_path, loose_umask, understanding
):
    data = tmp_path / "fresh" / "var"
    settings = load_settings(_clean_env(SEAMLINE_DATA_DIR=str(data), SEAMLINE_SECRET_KEY="k" * 32))
    with ThreadPoolExecutor(1) as pool:  # as `seamline run` does before serving
        pool.submit(upgrade, settings.database_url).result()
    app = await create_app(settings, understanding=understanding)
    try:
        await app[SEAMLINE].pipeline.handle(
            Message(channel="web", address="v1", sender="v1", text="hello", external_id="m1")
        )
        files = [data / "seamline.db", *(data / f"seamline.db{s}" for s in ("-wal", "-shm"))]
        assert mode(data) == 0o700 and mode(data.parent) == 0o700
        assert {f.name: mode(f) for f in files if f.exists()} == {f.name: 0o600 for f in files if f.exists()}
        assert (data / "seamline.db-wal").exists()  # the WAL file was made, and made private
    finally:
        await app[SEAMLINE].close()


def test_a_database_left_readable_by_an_older_version_is_tightened_at_start(tmp_path, loose_umask):
    data = tmp_path / "var"
    data.mkdir()
    (data / "seamline.db").touch(mode=0o644)
    os.chmod(data / "seamline.db", 0o644)
    upgrade(f"sqlite+aiosqlite:///{data}/seamline.db")
    assert mode(data / "seamline.db") == 0o600
    assert mode(data) == 0o755  # a directory the operator made is left as they made it
