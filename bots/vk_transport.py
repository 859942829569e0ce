"""VK's side of the VK channel: where calls go (``VkTransport``), which failures a retry may fix
(``classify``), the long poll position kept across restarts (``PollPosition``), and the thread a long
poll waits in. vk_api is synchronous; bots/vk.py calls it through ``asyncio.to_thread`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from vk_api.bot_longpoll import VkBotLongPoll
from vk_api.exceptions import ApiError, ApiHttpError, VkApiError

from seamline.bots.retry import Again
from seamline.shared.errors import ChannelError, ConfigError, Unreachable

log = logging.getLogger(__name__)

API_VERSION = "5.199"
VK_HOSTS = ("https://api.vk.ru", "https://api.vk.com")
RETRIED = {6, 10}  # too many requests per second; VK's internal error
UNREACHABLE = {900, 901, 902}  # blacklisted us; no permission to message; privacy settings
TOKEN_REFUSED = {5, 15, 27, 28}  # authorization failed, access denied, group/app authorization failed


class VkTransport(HTTPAdapter):
    """Sends calls meant for api.vk.ru / api.vk.com to ``base``, and gives every call a timeout."""

    def __init__(self, base: str = "", timeout: float = 30.0) -> None:
        super().__init__()
        self._base, self._timeout = base.rstrip("/"), timeout

    def send(self, request, **kwargs):  # type: ignore[override]  # passes every argument on
        for host in VK_HOSTS if self._base else ():
            if request.url.startswith(host + "/"):
                request.url = self._base + request.url[len(host) :]
                break
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def classify(what: str, exc: Exception) -> Again:
    """Errors 6 and 10, 5xx, 429 and network errors may pass on a retry; the rest is translated."""
    if isinstance(exc, ApiError):
        if exc.code in UNREACHABLE:
            raise Unreachable(f"VK {what}: {exc}") from exc
        if exc.code not in RETRIED:
            raise ChannelError(f"VK {what}: {exc}") from exc
        return Again(str(exc))
    if isinstance(exc, ApiHttpError):
        if exc.response.status_code < 500 and exc.response.status_code != 429:
            raise ChannelError(f"VK {what}: HTTP {exc.response.status_code}") from exc
        retry_after = exc.response.headers.get("Retry-After", "")
        return Again(
            f"HTTP {exc.response.status_code}", retry_after=float(retry_after) if retry_after.isdigit() else None
        )
    if isinstance(exc, requests.RequestException):
        return Again(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, VkApiError):  # captcha and the like: nothing a retry fixes
        raise ChannelError(f"VK {what}: {type(exc).__name__}: {exc}") from exc
    raise exc


def startup_error(exc: ChannelError, group_id: int, api_base: str) -> ConfigError:
    cause = exc.__cause__
    code, method = getattr(cause, "code", None), getattr(cause, "method", None)
    reason = str(cause).rstrip(".")
    if code in TOKEN_REFUSED or (code == 100 and method == "groups.getById"):
        return ConfigError(
            "SEAMLINE_VK_TOKEN",
            f"VK refused the token ({reason})",
            "Create a community access token with access to messages and community "
            "management (Manage → API usage → Access tokens)",
        )
    if code == 100:
        return ConfigError(
            "SEAMLINE_VK_GROUP_ID",
            f"VK refused community {group_id} ({reason})",
            "Set the community id (digits, without the minus)",
        )
    if isinstance(cause, ApiError):
        return ConfigError(
            "SEAMLINE_VK_TOKEN",
            f"VK refused to start the bot ({reason})",
            "Check the token's rights, and enable Bots Long Poll (or the Callback API) in Manage → API usage",
        )
    return ConfigError(
        "SEAMLINE_VK_API_BASE",
        f"cannot reach the VK API at {api_base or 'https://api.vk.ru'} ({exc})",
        "Check the network, or set SEAMLINE_VK_API_BASE to a reachable proxy (empty for VK)",
    )


class PollPosition:
    """Where the long poll was (``ts``), kept in a small file: after a restart the events that came
    while Seamline was stopped are fetched (as long as VK still has them) instead of skipped."""

    def __init__(self, file: Path | None) -> None:
        self._file: Path | None = file
        self._saved_ts: str | None = None

    def resume(self, longpoll: VkBotLongPoll) -> None:
        """Start from the position kept by the last run, if VK is not behind it."""
        if self._file is None:
            return
        try:
            saved = str(json.loads(self._file.read_text(encoding="utf-8"))["ts"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("VK long poll position in %s unreadable (%s); starting from now", self._file, exc)
            return
        current = str(longpoll.ts)
        if saved.isdigit() and current.isdigit() and int(saved) <= int(current):
            if saved != current:
                log.info(
                    "VK long poll resumes at ts %s (VK is at %s): events from while Seamline was stopped "
                    "are answered now",
                    saved,
                    current,
                )
            longpoll.ts = saved
            self._saved_ts = saved

    def remember(self, ts) -> None:
        if self._file is None or str(ts) == self._saved_ts:
            return
        try:
            draft = self._file.with_name(self._file.name + ".partial")
            draft.write_text(json.dumps({"ts": str(ts)}), encoding="utf-8")
            os.replace(draft, self._file)  # whole or not at all
            self._saved_ts = str(ts)
        except OSError as exc:
            log.warning("cannot keep the VK long poll position in %s: %s", self._file, exc)


async def in_daemon_thread(function):
    """``asyncio.to_thread`` for the long poll, but in a daemon thread.

    VK holds a long poll up to ``wait`` seconds and it cannot be interrupted; in the default executor
    the abandoned call would keep a stopping process alive that long (Python joins executor threads at
    exit). A daemon thread is simply left to finish, or to die with the process.
    """
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(result: object, error: BaseException | None) -> None:
        if future.done():
            return  # the poll was cancelled: Seamline is stopping
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result, error = function(), None
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task as it is
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="seamline-vk-longpoll", daemon=True).start()
    return await future
