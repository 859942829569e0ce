"""The channel contract (seamline.shared.channel) held by every built-in channel, and the registry
(bots/channels.py) that finds them through entry points, reads their settings and runs them.

One contract class runs over every built-in channel: what it declares, ``to_message`` on the recorded
payloads in tests/fixtures/<channel>/ (pure: the same answer twice, but for the time of arrival), its routes, its
deep links, and start/stop done twice against the local fakes.
"""

from __future__ import annotations

import json
from dataclasses import replace
from importlib.metadata import entry_points
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from seamline.bots import channels
from seamline.bots.app import SEAMLINE
from seamline.bots.channels import CHANNELS, GROUP
from seamline.shared.channel import ChannelAdapter, ChannelConfig, Setting
from seamline.shared.errors import ConfigError
from seamline.shared.message import Message

from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.fakes.vk import FakeVk
from tests.support import eventually

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BUILT_IN = ("web", "telegram", "vk")


@pytest.fixture
async def telegram():
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def vk():
    async with FakeVk() as fake:
        yield fake


@pytest.fixture
async def running(telegram, vk, settings, make_server):
    """Seamline with every built-in channel on, against the fakes; its adapters by name."""
    server = await make_server(
        settings,
        channels={
            "telegram": {"token": TOKEN, "api_base": telegram.url},
            "vk": {"token": vk.token, "group_id": vk.group_id, "api_base": vk.url},
        },
    )
    return server.app[CHANNELS]


def test_the_registry_finds_the_built_in_channels_through_entry_points():
    declared = {point.name: point.value for point in entry_points(group=GROUP)}
    assert declared["telegram"] == "seamline.bots.telegram_channel:TelegramChannel"
    found = channels.discover()
    assert set(BUILT_IN) <= set(found)
    assert all(found[name].name == name for name in found)


@pytest.mark.parametrize("name", BUILT_IN)
class TestContract:
    def test_declares_its_name_labels_icon_and_settings(self, name):
        cls = channels.discover()[name]
        assert cls.name == name
        assert {"en", "ru"} <= set(cls.labels) and all(isinstance(v, str) and v for v in cls.labels.values())
        assert isinstance(cls.icon, str)
        assert all(isinstance(s, Setting) for s in cls.settings)
        assert len({s.key for s in cls.settings}) == len({s.env for s in cls.settings}) == len(cls.settings)

    def test_to_message_is_pure_on_every_recorded_payload(self, name, running):
        adapter = running[name]
        payloads = sorted((FIXTURES / name).glob("*.json"))
        assert payloads, f"no recorded payloads in tests/fixtures/{name}"
        messages = 0
        for path in payloads:
            native = json.loads(path.read_text(encoding="utf-8"))
            first, second = adapter.to_message(native), adapter.to_message(native)
            if first is not None:  # ts is the time of arrival, the one thing allowed to differ
                second = replace(second, ts=first.ts)
            assert first == second, path.name
            if first is not None:
                messages += 1
                assert isinstance(first, Message) and first.channel == name and first.address, path.name
        assert messages >= 1

    async def test_is_an_adapter_with_routes_and_a_deep_link_of_the_right_type(self, name, running):
        adapter = running[name]
        assert isinstance(adapter, ChannelAdapter)
        assert all(isinstance(route, web.AbstractRouteDef) for route in adapter.routes())
        link = adapter.deep_link("ln-abc")
        assert link is None or (isinstance(link, str) and "ln-abc" in link)

    async def test_start_and_stop_may_each_come_twice(self, name, running):
        adapter = running[name]
        await adapter.start()  # already started by the server: nothing new
        await adapter.stop()
        await adapter.stop()  # and the server's own stop comes after


async def test_the_channels_served_are_listed_with_labels_and_icons(settings, make_server, telegram):
    server = await make_server(settings, channels={"telegram": {"token": TOKEN, "api_base": telegram.url}})
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/api/v1/channels") as response:
        listed = (await response.json())["channels"]
    by_name = {c["name"]: c for c in listed}
    assert set(by_name) == {"telegram", "web"}  # VK is not configured here, REST neither
    assert by_name["telegram"]["labels"]["en"] == "Telegram" and by_name["telegram"]["icon"]


async def test_the_widget_is_offered_the_channels_with_deep_links_in_its_language(settings, make_server, telegram, vk):
    server = await make_server(
        settings,
        channels={
            "telegram": {"token": TOKEN, "api_base": telegram.url},
            "vk": {"token": vk.token, "group_id": vk.group_id, "api_base": vk.url},
        },
    )
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as ws:
        await ws.send_json({"type": "hello", "token": None, "lang": "ru"})
        welcome = await ws.receive_json(timeout=10)
    assert welcome["channels"] == ["telegram", "vk"]
    assert [(c["channel"], c["label"]) for c in welcome["continue_in"]] == [
        ("telegram", "Telegram"),
        ("vk", "ВКонтакте"),
    ]
    assert welcome["labels"]["web"] == "Сайт"


# -- settings, through the registry ---------------------------------------------------------------

TG_TOKEN = "123456789:" + "A" * 35


def enabled(env=None, tables=None):
    return channels.enabled(env or {}, tables or {})


def refused(env=None, tables=None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        enabled(env, tables)
    return caught.value


def test_only_the_channels_whose_settings_are_given_are_on():
    assert set(enabled()) == {"web"}
    on = enabled({"SEAMLINE_TELEGRAM_TOKEN": TG_TOKEN})
    assert set(on) == {"web", "telegram"}
    assert on["telegram"].config["api_base"] == "https://api.telegram.org"


@pytest.mark.parametrize(
    "env, setting, problem, fix",
    [
        (
            {"SEAMLINE_TELEGRAM_TOKEN": "not-a-token"},
            "SEAMLINE_TELEGRAM_TOKEN",
            "does not look like a bot token",
            "Copy the token @BotFather gave you",
        ),
        (
            {"SEAMLINE_TELEGRAM_TOKEN": TG_TOKEN, "SEAMLINE_TELEGRAM_API_BASE": "ftp://x"},
            "SEAMLINE_TELEGRAM_API_BASE",
            "'ftp://x' is not an http(s) URL",
            "SEAMLINE_TELEGRAM_API_BASE=https://api.telegram.org",
        ),
        (
            {"SEAMLINE_TELEGRAM_TOKEN": TG_TOKEN, "SEAMLINE_TELEGRAM_WEBHOOK_SECRET": "s" * 20},
            "SEAMLINE_TELEGRAM_WEBHOOK_URL",
            "is not set, but a webhook secret is",
            "unset the secret for long polling",
        ),
        (
            {
                "SEAMLINE_TELEGRAM_TOKEN": TG_TOKEN,
                "SEAMLINE_TELEGRAM_WEBHOOK_URL": "https://bot.example/telegram/webhook",
            },
            "SEAMLINE_TELEGRAM_WEBHOOK_SECRET",
            "must be 16-256 characters",
            "secrets.token_urlsafe",
        ),
        (
            {"SEAMLINE_TELEGRAM_WEBHOOK_URL": "https://bot.example/telegram/webhook"},
            "SEAMLINE_TELEGRAM_TOKEN",
            "is not set, but other Telegram settings are",
            "SEAMLINE_TELEGRAM_WEBHOOK_URL",
        ),
        ({"SEAMLINE_VK_TOKEN": "vk1.a.token"}, "SEAMLINE_VK_GROUP_ID", "is not set", "SEAMLINE_VK_GROUP_ID=123456"),
        (
            {"SEAMLINE_VK_TOKEN": "vk1.a.token", "SEAMLINE_VK_GROUP_ID": "abc"},
            "SEAMLINE_VK_GROUP_ID",
            "'abc' is not a whole number",
            "SEAMLINE_VK_GROUP_ID=123456",
        ),
        (
            {"SEAMLINE_VK_TOKEN": "vk1.a.token", "SEAMLINE_VK_GROUP_ID": "7", "SEAMLINE_VK_CONFIRMATION": "abc"},
            "SEAMLINE_VK_SECRET",
            "the Callback API is half configured",
            "or neither (Bots Long Poll)",
        ),
        (
            {"SEAMLINE_VK_GROUP_ID": "7"},
            "SEAMLINE_VK_TOKEN",
            "is not set, but other VK settings are",
            "community access token",
        ),
    ],
    ids=[
        "telegram-token",
        "telegram-api-base",
        "secret-without-url",
        "url-without-secret",
        "webhook-without-token",
        "vk-no-group",
        "vk-group-not-a-number",
        "vk-half-callback",
        "vk-without-token",
    ],
)
def test_a_bad_channel_setting_names_itself_the_problem_and_the_fix(env, setting, problem, fix):
    error = refused(env)
    assert error.setting == setting
    assert problem in error.problem and fix in error.fix
    assert str(error).startswith(f"{setting}: ")


def test_seamline_toml_tables_are_read_and_the_environment_wins():
    tables = {"vk": {"token": "vk1.a.file", "group_id": 42, "callback_buttons": True}}
    on = enabled({"SEAMLINE_VK_GROUP_ID": "43"}, tables)
    assert (on["vk"].config["group_id"], on["vk"].config["callback_buttons"]) == (43, True)
    assert on["vk"].config.given == {"token", "group_id", "callback_buttons"}


def test_a_table_for_a_channel_that_is_not_installed_is_refused():
    error = refused(tables={"telegarm": {"token": TG_TOKEN}})
    assert error.setting == "[channels.telegarm]" and "telegram" in error.fix


def test_a_key_a_channel_does_not_declare_is_refused():
    error = refused(tables={"telegram": {"token": TG_TOKEN, "webhook": "https://x.example"}})
    assert error.setting == "[channels.telegram] webhook" and "webhook_url" in error.fix


def test_secrets_never_show_in_a_channel_config():
    on = enabled({"SEAMLINE_TELEGRAM_TOKEN": TG_TOKEN})
    assert TG_TOKEN not in repr(on["telegram"].config)
    assert "***" in repr(ChannelConfig({"token": "x" * 20}, secret=("token",)))


def test_load_settings_keeps_the_channel_tables_of_seamline_toml(tmp_path):
    from seamline.shared.settings import load_settings

    (tmp_path / "seamline.toml").write_text(f'[channels.telegram]\ntoken = "{TG_TOKEN}"\n', encoding="utf-8")
    settings = load_settings({"SEAMLINE_CONFIG_DIR": str(tmp_path), "SEAMLINE_DATA_DIR": str(tmp_path / "var")})
    assert TG_TOKEN not in repr(settings)
    assert set(channels.enabled(settings.environ, settings.channels)) == {"web", "telegram"}


# -- third-party plug-ins -------------------------------------------------------------------------


def plug_in(root: Path, monkeypatch, name: str, target: str, module: str = "", source: str = "") -> None:
    """Install a plug-in the way pip would, as far as entry points go: a dist-info on sys.path."""
    info = root / f"{name}_channel-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-channel\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{name} = {target}\n")
    if module:
        (root / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(root))


def test_a_plug_in_that_cannot_be_imported_is_named_with_its_package(tmp_path, monkeypatch):
    plug_in(tmp_path, monkeypatch, "broken", "broken_channel_gone:BrokenChannel")
    with pytest.raises(ConfigError) as caught:
        channels.discover()
    assert caught.value.setting == f"entry point {GROUP}:broken"
    assert "ModuleNotFoundError" in caught.value.problem and "broken-channel" in caught.value.fix


def test_a_plug_in_whose_class_has_another_name_is_refused(tmp_path, monkeypatch):
    plug_in(
        tmp_path,
        monkeypatch,
        "pager",
        "misnamed_channel:PagerChannel",
        "misnamed_channel",
        PAGER.replace('name = "pager"', 'name = "beeper"'),
    )
    with pytest.raises(ConfigError, match="is named 'beeper', not 'pager'"):
        channels.discover()


PAGER = '''
from aiohttp import web


class PagerChannel:
    """A third-party channel with deep links, written against the public contract only."""

    name = "pager"
    labels = {"en": "Pager", "ru": "Пейджер"}
    icon = "📟"
    settings = ()

    def __init__(self, *, config, context):
        self.started = 0

    def to_message(self, native):
        return None

    async def send(self, address, reply):
        pass

    def routes(self):
        return []

    async def start(self):
        self.started += 1

    async def stop(self):
        pass

    def deep_link(self, token):
        return "https://pager.example/open?start=" + token
'''


async def test_an_installed_plug_in_is_served_and_offered_in_the_widget(tmp_path, monkeypatch, settings, make_server):
    plug_in(tmp_path, monkeypatch, "pager", "pager_channel:PagerChannel", "pager_channel", PAGER)
    server = await make_server(settings)
    assert server.app[CHANNELS]["pager"].started == 1
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(server.ws_url) as ws:
            await ws.send_json({"type": "hello", "token": None, "lang": "ru"})
            welcome = await ws.receive_json(timeout=10)
            await ws.send_json({"type": "link", "id": "l-1", "channel": "pager"})
            link = await ws.receive_json(timeout=10)
    assert welcome["continue_in"] == [{"channel": "pager", "label": "Пейджер", "icon": "📟"}]
    assert link["url"].startswith("https://pager.example/open?start=ln-")


async def test_a_plug_in_failing_to_build_stops_the_start_naming_it(tmp_path, monkeypatch, settings, make_server):
    plug_in(
        tmp_path,
        monkeypatch,
        "pager",
        "failing_channel:PagerChannel",
        "failing_channel",
        PAGER.replace("self.started = 0", 'raise RuntimeError("no modem found")'),
    )
    with pytest.raises(ConfigError) as caught:
        await make_server(settings)
    assert caught.value.setting == "[channels.pager]" and "RuntimeError: no modem found" in caught.value.problem


def test_the_widget_comes_first_then_the_configured_channels_by_name():
    on = enabled({"SEAMLINE_VK_TOKEN": "vk1.a.token", "SEAMLINE_VK_GROUP_ID": "7", "SEAMLINE_TELEGRAM_TOKEN": TG_TOKEN})
    assert list(on) == ["web", "telegram", "vk"]


async def test_telegram_and_vk_share_the_frameworks_ordering_engine_and_retry_policy(tmp_path):
    """Neither channel builds its own: both take the context's intake factory and retry policy."""
    from seamline.bots.intake import Intake
    from seamline.bots.retry import RetryPolicy
    from seamline.shared.channel import ChannelContext
    from seamline.shared.limits import MemoryLimiter

    asked: list[str] = []

    def intake(channel, process):
        asked.append(channel)
        return Intake(inbox=None, process=process)  # type: ignore[arg-type]  # never started here

    policy = RetryPolicy(attempts=2)
    context = ChannelContext(
        conversations=None,
        limiter=MemoryLimiter(),
        data_dir=tmp_path,  # type: ignore[arg-type]
        extras={"intake": intake, "retry": policy, "store": None},
    )
    on = enabled({"SEAMLINE_VK_TOKEN": "vk1.a.token", "SEAMLINE_VK_GROUP_ID": "7", "SEAMLINE_TELEGRAM_TOKEN": TG_TOKEN})
    built = channels.build({name: on[name] for name in ("telegram", "vk")}, context)
    try:
        assert asked == ["telegram", "vk"]
        assert built["telegram"].bot._retry is policy and built["vk"]._retry is policy
    finally:
        await built["telegram"].bot._bot.session.close()
        await built["vk"].stop()


async def test_a_plug_in_message_stored_then_acknowledged_but_never_answered_is_answered_at_the_next_start(
    tmp_path, monkeypatch, settings, make_server
):
    """A crash between a plug-in's "ok" (after on_stored) and the bot's answer loses nothing."""
    recording = PAGER.replace(
        "        pass\n\n    def routes", "        SENT.append((address, reply.text))\n\n    def routes"
    )
    plug_in(
        tmp_path, monkeypatch, "pager", "recording_pager:PagerChannel", "recording_pager", "SENT = []\n" + recording
    )
    first = await make_server(settings)

    async def crash(stored) -> None:
        raise RuntimeError("kill -9 right after the platform was told ok")

    with pytest.raises(RuntimeError):
        await first.app[SEAMLINE].pipeline.handle(
            Message(channel="pager", address="p-1", sender="p-1", text="hello", external_id="m-1"), on_stored=crash
        )
    await first.stop()
    import recording_pager

    assert recording_pager.SENT == []  # stored, acknowledged, not answered
    await make_server(settings)

    async def answered() -> bool:
        return [address for address, _ in recording_pager.SENT] == ["p-1"]

    await eventually(answered)
