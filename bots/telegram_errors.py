"""How the Telegram channel reads aiogram's errors: which a retry may fix (flood control with its
``retry_after``, 5xx, the network) for the shared retry policy (bots/retry.py), which mean the
customer is gone (``Unreachable``), and which at start mean a setting is wrong (``ConfigError``
naming it).
"""

from __future__ import annotations

from aiogram.exceptions import (
    AiogramError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import SetWebhook

from seamline.bots.retry import Again
from seamline.shared.errors import ChannelError, ConfigError, Unreachable


def classify(name: str, exc: Exception) -> Again:
    """What may pass on a retry (flood control, 5xx, the network) and the rest translated."""
    if isinstance(exc, TelegramRetryAfter):
        return Again(f"flood control: retry after {exc.retry_after} s", retry_after=float(exc.retry_after))
    if isinstance(exc, (TelegramServerError, TelegramNetworkError)):
        return Again(str(exc))
    if isinstance(exc, TelegramForbiddenError):  # blocked by the user, user deactivated, kicked from the group
        raise Unreachable(f"Telegram {name}: {exc.message}") from exc
    if isinstance(exc, (TelegramBadRequest, TelegramNotFound)):
        if "chat not found" in exc.message.lower():
            raise Unreachable(f"Telegram {name}: {exc.message}") from exc
        raise ChannelError(f"Telegram {name}: {exc.message}") from exc
    if isinstance(exc, AiogramError):  # unauthorized, an answer that is not the Bot API's, ...
        raise ChannelError(f"Telegram {name}: {exc}") from exc
    raise exc


def config_error(exc: ChannelError, api_base: str) -> ConfigError:
    cause = exc.__cause__
    if isinstance(cause, TelegramUnauthorizedError):
        return ConfigError(
            "SEAMLINE_TELEGRAM_TOKEN",
            "Telegram refused the token (401 Unauthorized)",
            "Copy the token @BotFather gave you (or /revoke it there and set the new one)",
        )
    if isinstance(cause, TelegramBadRequest) and isinstance(cause.method, SetWebhook):
        return ConfigError(
            "SEAMLINE_TELEGRAM_WEBHOOK_URL",
            f"Telegram refused the webhook ({cause.message})",
            "Use the public https URL of /telegram/webhook on this server",
        )
    return ConfigError(
        "SEAMLINE_TELEGRAM_API_BASE",
        f"{api_base} did not answer like the Telegram Bot API ({exc})",
        "Use https://api.telegram.org or the URL of your own Bot API server",
    )
