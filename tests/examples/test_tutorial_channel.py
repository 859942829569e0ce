"""The tutorial channel (examples/callback_channel, docs/channels.md) as a user gets it: installed with
pip as a package of its own, found through its entry point, a message through it answered by the bot;
and the doc shows the example's real code."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from seamline.bots.app import build
from seamline.shared.channel import ChannelContext

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "callback_channel"
TOKEN = "tutorial-token-0123456789"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example installed by pip into a folder of its own (not into the test venv: nothing to undo)."""
    target, source = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("src") / "callback_channel"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    # A copy: setuptools builds in the source folder, and a build left in examples/ would go stale.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


@pytest.fixture
def installed(site, monkeypatch):
    """The installed example visible to this process, as if it were in site-packages."""
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [n for n in sys.modules if n == "seamline_callback" or n.startswith("seamline_callback.")]:
        del sys.modules[name]


def test_pip_installs_the_distribution_with_its_entry_point(site):
    dist = next(site.glob("seamline_callback_channel-*.dist-info"))
    assert (
        "[seamline.channels]\ncallback = seamline_callback.channel:CallbackChannel"
        in (dist / "entry_points.txt").read_text()
    )


def test_the_installed_channel_is_found_by_its_entry_point(installed):
    found = {ep.name: ep for ep in entry_points(group="seamline.channels")}
    assert "callback" in found and "rest" in found  # beside the built-in ones
    channel = found["callback"].load()
    assert channel.__module__ == "seamline_callback.channel"
    assert Path(sys.modules[channel.__module__].__file__).is_relative_to(installed)
    assert channel.name == "callback" and channel.labels["en"] and channel.icon


def test_the_example_uses_only_the_public_api():
    source = (EXAMPLE / "seamline_callback" / "channel.py").read_text()
    imported = set(re.findall(r"^from (seamline\S*) import", source, re.M))
    assert imported == {"seamline"}


def test_the_examples_own_tests_pass_against_the_installed_package(installed):
    env = {**os.environ, "PYTHONPATH": str(installed)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(EXAMPLE),
            "-c",
            os.devnull,
            str(EXAMPLE / "tests"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


class Messenger:
    """The other side: a messenger's server that receives the bot's replies."""

    def __init__(self) -> None:
        self.replies: list[dict] = []
        self.arrived = asyncio.Event()

    async def receive(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "who are you"}, status=401)
        self.replies.append(await request.json())
        self.arrived.set()
        return web.json_response({"ok": True})


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def test_a_message_through_the_installed_channel_is_answered_by_the_bot(installed, settings, understanding):
    messenger = Messenger()
    messenger_app = web.Application()
    messenger_app.router.add_post("/replies", messenger.receive)
    messenger_runner, messenger_url = await serve(messenger_app)
    seamline = await build(settings, understanding=understanding)
    cls = next(ep for ep in entry_points(group="seamline.channels") if ep.name == "callback").load()
    channel = cls(
        config={"url": f"{messenger_url}/replies", "token": TOKEN},
        context=ChannelContext(conversations=seamline.pipeline, limiter=seamline.limiter, data_dir=settings.data_dir),
    )
    seamline.pipeline.register(channel)
    app = web.Application()
    app.add_routes(channel.routes())
    runner, url = await serve(app)
    await channel.start()
    try:
        async with aiohttp.ClientSession() as http:
            body = {"type": "message", "id": 7, "sender": "u-1", "text": "how much is delivery"}
            async with http.post(f"{url}/webhooks/callback/webhook", json=body) as r:
                assert r.status == 401  # no token, nothing stored
            async with http.post(
                f"{url}/webhooks/callback/webhook", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
            ) as r:
                assert r.status == 200 and await r.json() == {"ok": True}
            # Acknowledged means stored: the message is in the history already.
            assert [m.text for m in await seamline.pipeline.history("callback", "u-1")][:1] == ["how much is delivery"]
            await asyncio.wait_for(messenger.arrived.wait(), 10)
        reply = messenger.replies[0]
        assert reply["recipient"] == "u-1" and "deliver" in reply["text"].lower() and reply["role"] == "bot"
    finally:
        await channel.stop()
        await channel.stop()  # twice is harmless: the registry calls it at shutdown and at cleanup
        await runner.cleanup()
        await messenger_runner.cleanup()
        await seamline.close()


def test_the_docs_show_the_examples_real_code():
    """Every file docs/channels.md shows under a "<!-- file: path -->" marker is that file, verbatim."""
    doc = (ROOT / "docs" / "channels.md").read_text(encoding="utf-8")
    shown = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", doc, re.S)
    assert {path for path, _ in shown} >= {
        "examples/callback_channel/seamline_callback/channel.py",
        "examples/callback_channel/pyproject.toml",
    }
    for path, code in shown:
        assert code == (ROOT / path).read_text(encoding="utf-8"), f"docs/channels.md shows an old {path}"


def test_the_doc_names_every_setting_of_the_rest_channel():
    from seamline.bots.rest import RestChannel

    doc = (ROOT / "docs" / "channels.md").read_text(encoding="utf-8")
    for setting in RestChannel.settings:
        assert setting.env in doc, setting.env


@pytest.mark.slow
async def test_seamline_run_serves_the_installed_channel(site, tmp_path, models_dir):
    """The user's way: the package installed, two settings in the environment, `seamline run`."""
    from seamline.shared.settings import CONFIG_DIR

    messenger = Messenger()
    messenger_app = web.Application()
    messenger_app.router.add_post("/replies", messenger.receive)
    messenger_runner, messenger_url = await serve(messenger_app)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMLINE_")}
    env.update(
        PYTHONPATH=str(site),
        SEAMLINE_CONFIG_DIR=str(CONFIG_DIR),
        SEAMLINE_NLU_MODELS=str(models_dir),
        SEAMLINE_DATA_DIR=str(tmp_path / "var"),
        SEAMLINE_PORT=str(port),
        SEAMLINE_HOST="127.0.0.1",
        SEAMLINE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/seamline.db",
        SEAMLINE_CALLBACK_URL=f"{messenger_url}/replies",
        SEAMLINE_CALLBACK_TOKEN=TOKEN,
    )
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("seamline")), "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):  # up to a minute for the imports and the start
                try:
                    async with http.get(f"{url}/api/v1/channels") as r:
                        listed = [c["name"] for c in (await r.json())["channels"]]
                        break
                except aiohttp.ClientError:
                    assert process.poll() is None, process.stderr.read()
                    await asyncio.sleep(0.1)
            assert "callback" in listed
            body = {"type": "message", "id": "a1", "sender": "u-9", "text": "hello"}
            async with http.post(
                f"{url}/webhooks/callback/webhook", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
            ) as r:
                assert r.status == 200
            await asyncio.wait_for(messenger.arrived.wait(), 30)
        assert messenger.replies[0]["recipient"] == "u-9" and messenger.replies[0]["buttons"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, errors = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, errors = process.communicate()
        await messenger_runner.cleanup()
    assert "Traceback" not in errors, errors
