"""What the VK channel reads: its declared settings (environment, else ``[channels.vk]`` of
seamline.toml) and the one check two of them need together. The registry (bots/channels.py) turns a
parse error into a ConfigError naming the variable, the problem and the fix.
"""

from __future__ import annotations

from seamline.shared.channel import ChannelConfig, Setting, http_url, whole_number
from seamline.shared.errors import ConfigError


def flag(raw: str) -> bool:
    """true/false, 1/0, yes/no, on/off."""
    value = raw.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise ValueError(f"{raw!r} is not true or false")
    return value in ("true", "1", "yes", "on")


def _group_id(raw: str) -> int:
    return whole_number(1, 10**12)(raw)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "token",
        "SEAMLINE_VK_TOKEN",
        help="the community access token",
        secret=True,
        enables=True,
        fix="Set the community access token (Manage → API usage)",
    ),
    Setting(
        "group_id",
        "SEAMLINE_VK_GROUP_ID",
        help="the community id",
        required=True,
        parse=_group_id,
        example="123456 (the community id, without the minus)",
    ),
    Setting(
        "api_base",
        "SEAMLINE_VK_API_BASE",
        help="a proxy for api.vk.ru; empty: VK itself",
        default="",
        parse=http_url,
        example="https://vk-proxy.example.com",
    ),
    Setting("confirmation", "SEAMLINE_VK_CONFIRMATION", help="Callback API confirmation string", default=""),
    Setting("secret", "SEAMLINE_VK_SECRET", help="Callback API secret", default="", secret=True),
    Setting(
        "rate_limit",
        "SEAMLINE_VK_RATE_LIMIT",
        help="API calls a second (VK allows a community 20; 0: no limit)",
        default=20,
        parse=whole_number(0, 1000),
        example="20",
    ),
    Setting(
        "polling",
        "SEAMLINE_VK_POLLING",
        help="Bots Long Poll in this process (no Callback API); false: another process polls, this one sends",
        default=True,
        parse=flag,
        example="false",
    ),
    Setting(
        "callback_buttons",
        "SEAMLINE_VK_CALLBACK_BUTTONS",
        help="reply buttons as callback buttons",
        default=False,
        parse=flag,
        example="true",
    ),
)


def check_callback(config: ChannelConfig) -> None:
    """The Callback API needs both its confirmation string and its secret."""
    if bool(config["confirmation"]) != bool(config["secret"]):
        missing = "SEAMLINE_VK_SECRET" if config["confirmation"] else "SEAMLINE_VK_CONFIRMATION"
        raise ConfigError(
            missing,
            "is not set, but the Callback API is half configured",
            "Set both SEAMLINE_VK_CONFIRMATION and SEAMLINE_VK_SECRET (Callback API), or neither (Bots Long Poll)",
        )
