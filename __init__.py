"""Seamline: one customer conversation across Telegram, VK, the website chat and your own channels.

This module is the public API a bot author imports (``from seamline import Message, Reply``);
everything under ``seamline.bots``, ``seamline.nlu``, ``seamline.handoff`` and ``seamline.shared``
is internal and may change between releases. See docs/build-your-bot.md.

The heavy parts (the web application, aiogram) load only when asked for, so ``import seamline``
stays cheap for a channel plug-in or an action package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seamline.shared.channel import ChannelAdapter, ChannelConfig, ChannelContext, Conversations, Setting
from seamline.shared.errors import ChannelError, ConfigError, SeamlineError, Unreachable
from seamline.shared.message import Attachment, Button, Message, Reply
from seamline.shared.settings import Settings, load_settings

if TYPE_CHECKING:
    from seamline.bots.app import create_app
    from seamline.bots.steps import Step, Turn

__version__ = "0.2.0"

__all__ = [
    "Attachment",
    "Button",
    "ChannelAdapter",
    "ChannelConfig",
    "ChannelContext",
    "ChannelError",
    "ConfigError",
    "Conversations",
    "Message",
    "Reply",
    "SeamlineError",
    "Setting",
    "Settings",
    "Step",
    "Turn",
    "Unreachable",
    "__version__",
    "create_app",
    "load_settings",
]

_LAZY = {"create_app": "seamline.bots.app", "Step": "seamline.bots.steps", "Turn": "seamline.bots.steps"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seamline' has no attribute {name!r}")
