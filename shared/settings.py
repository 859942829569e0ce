"""One frozen Settings object, read from ``config/seamline.toml`` and the environment.

Only the composition root (``bots/app.py``) and the CLI read settings; everything else gets
what it needs handed in. Every error names the setting, what is wrong and how to fix it.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from seamline.shared.errors import ConfigError
from seamline.shared.files import private_dir
from seamline.shared.net import Network, parse_networks

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
LANGUAGES = ("en", "ru")
PROJECT_MARKER = Path("config") / "seamline.toml"  # what makes a folder a bot project (bots/project.py)


def find_project(start: Path) -> Path | None:
    """The nearest folder from ``start`` upwards holding config/seamline.toml (as git finds .git)."""
    start = start.resolve()
    return next((folder for folder in (start, *start.parents) if (folder / PROJECT_MARKER).is_file()), None)


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = field(default="sqlite+aiosqlite:///var/seamline.db", repr=False)  # may hold a password
    redis_url: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    config_dir: Path = CONFIG_DIR
    data_dir: Path = Path("var")
    default_language: str = "en"
    fallbacks_before_human: int = 2
    web_rate_limit: int = 30  # widget frames per 10 seconds per visitor (all its tabs); 0 turns the limit off
    web_address_rate_limit: int = 300  # widget frames per 10 seconds per client address; 0: off
    web_connections_per_address: int = 100  # open widget sockets per client address; 0: no cap
    web_hello_timeout: int = 10  # seconds a new widget socket has to send its hello
    web_history_bytes: int = 65536  # the most history one welcome (or older page) carries, in bytes of JSON
    visitor_token_days: int = 90  # a widget's token dies after this many days unused
    old_secret_keys: tuple[str, ...] = field(default=(), repr=False)  # verify visitor tokens, never sign
    web_allowed_origins: tuple[str, ...] = ()  # sites that may embed the widget; empty: any site
    console_allowed_origins: tuple[str, ...] = ()  # besides its own, origins that may use the console's login
    web_identity_secret: str = field(default="", repr=False)  # signs the site's logged-in user id; empty: off
    link_guesses_per_address: int = 20  # link codes one client address may type per hour (the widget)
    link_guesses_per_hour: int = 1000  # link codes typed per hour on every channel together
    # Channels are plug-ins (bots/channels.py): their settings are read by the registry from these,
    # the [channels.<name>] tables of seamline.toml and the environment seen at load time.
    channels: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold tokens
    log_level: str = "INFO"
    nlu_models: Path | None = None  # directory of trained models; None: DATA_DIR/models
    order_pattern: str = r"(?<![\d+])(?:№\s?|#\s?)?(\d{4,12})(?!\d)"
    phone_region: str = "RU"  # where a phone number without a country code is from
    oos_recall: float = 0.6  # out-of-scope share the threshold must catch on held-out examples
    trusted_proxies: tuple[Network, ...] = ()  # peers whose X-Forwarded-For / -Proto are believed
    cookie_secure: str = "auto"  # the console cookie's Secure flag: auto (when reached over https), true, false
    agent_grace_seconds: int = 90  # an agent without a console or API call for this long gets no new customers
    # Custom actions (bots/dialogue/actions.py): the project's module run in process, and/or a Rasa
    # action server's webhook URL; an action that takes longer than action_timeout seconds has failed.
    actions_module: str = "actions"
    action_endpoint: str = ""
    action_timeout: float = 10.0
    project_dir: Path | None = None  # the bot project's folder (its actions/ import from here)
    rasa_project: Path | None = None  # a Rasa 3.x project run as it is (bots/dialogue/rasa.py)
    # Operations (docs/deploy.md): worker processes sharing the port, log lines as text or JSON,
    # seconds a stopping worker gives in-flight messages, the Bearer token /metrics asks for (empty:
    # only loopback and private-network scrapers), tries of one reply before it is given up as failed.
    workers: int = 1
    log_format: str = "text"
    shutdown_grace: float = 10.0
    metrics_token: str = field(default="", repr=False)
    outbox_max_attempts: int = 10

    @property
    def models_dir(self) -> Path:
        return self.nlu_models if self.nlu_models is not None else self.data_dir / "models"

    @property
    def intents_dir(self) -> Path:
        return self.config_dir / "intents"

    @property
    def is_embedded_db(self) -> bool:
        return self.database_url.startswith("sqlite")


def _int(name: str, raw: object, low: int, high: int, example: str) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(name, f"{raw!r} is not a whole number", f"Set it like {example}") from None
    if not low <= value <= high:
        raise ConfigError(name, f"{value} is outside {low}..{high}", f"Set it like {example}")
    return value


def _seconds(name: str, raw: object, example: str) -> float:
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise ConfigError(name, f"{raw!r} is not a number of seconds", f"Set it like {example}") from None
    if not 0.05 <= value <= 600:
        raise ConfigError(name, f"{value} is outside 0.05..600 seconds", f"Set it like {example}")
    return value


def action_endpoint_url(raw: str) -> str:
    """A Rasa action server's webhook, e.g. http://localhost:5055/webhook; empty: actions run in process."""
    raw = raw.strip()
    if raw and (urlsplit(raw).scheme not in ("http", "https") or not urlsplit(raw).hostname):
        raise ConfigError(
            "SEAMLINE_ACTION_ENDPOINT",
            f"{raw!r} is not an http(s) URL",
            "Set it like SEAMLINE_ACTION_ENDPOINT=http://localhost:5055/webhook",
        )
    return raw


def _database_url(raw: str) -> str:
    name = "SEAMLINE_DATABASE_URL"
    scheme = urlsplit(raw).scheme
    if scheme in ("postgres", "postgresql"):
        return "postgresql+asyncpg" + raw[len(scheme) :]
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        return "sqlite+aiosqlite" + raw[len(scheme) :]
    if scheme == "postgresql+asyncpg":
        return raw
    raise ConfigError(
        name,
        f"unsupported database URL {raw.split('@')[-1]!r}",
        "Use sqlite+aiosqlite:///var/seamline.db or postgresql+asyncpg://user:password@host:5432/db",
    )


def _redis_url(raw: str) -> str:
    if raw and urlsplit(raw).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            "SEAMLINE_REDIS_URL",
            f"a {urlsplit(raw).scheme}:// URL is not a Redis URL",
            "Use redis://127.0.0.1:6379/0, or leave it empty for the in-process session store",
        )
    return raw


def _secret_key(raw: str, data_dir: Path) -> str:
    if raw:
        if len(raw) < 16:
            raise ConfigError(
                "SEAMLINE_SECRET_KEY",
                "is shorter than 16 characters",
                'Use a long random value, e.g. python -c "import secrets; print(secrets.token_urlsafe(32))"',
            )
        return raw
    # Embedded default: keep one generated key beside the database so tokens survive restarts.
    path = data_dir / "secret_key"
    private_dir(data_dir)  # 0700 when created here: it holds the key, the database and the models
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
    except FileExistsError:
        key = path.read_text().strip()
        if len(key) < 16:
            raise ConfigError(
                str(path),
                "holds no usable key (shorter than 16 characters)",
                "Delete the file to have a new key made, or set SEAMLINE_SECRET_KEY",
            ) from None
        return key
    key = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as file:
        file.write(key)
    return key


def _old_secret_keys(raw: str) -> tuple[str, ...]:
    """Keys that signed visitor tokens before a rotation: they verify, SEAMLINE_SECRET_KEY signs."""
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    if any(len(k) < 16 for k in keys):
        raise ConfigError(
            "SEAMLINE_OLD_SECRET_KEYS",
            "holds a key shorter than 16 characters",
            "List the previous SEAMLINE_SECRET_KEY values, comma-separated, exactly as they were",
        )
    return keys


def _identity_secret(raw: str) -> str:
    """The key a site signs its logged-in user's id with (see docs/web-chat-protocol.md); empty: off."""
    raw = raw.strip()
    if raw and len(raw) < 16:
        raise ConfigError(
            "SEAMLINE_WEB_IDENTITY_SECRET",
            "is shorter than 16 characters",
            'Use a long random value shared with the site, e.g. python -c "import secrets; '
            'print(secrets.token_urlsafe(32))", or leave it empty to turn signed identities off',
        )
    return raw


def _origins(raw: str, name: str = "SEAMLINE_WEB_ALLOWED_ORIGINS") -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ConfigError(
                name,
                f"{origin!r} is not an origin",
                "List origins like https://shop.example,https://www.shop.example (no paths)",
            )
    return origins


def load_settings(env: dict[str, str] | None = None, *, project: Path | None = None) -> Settings:
    """Settings from ``config/seamline.toml`` and ``env`` (the environment wins).

    ``project`` is a bot project's folder (the one holding ``config/``, see bots/project.py): its
    config/ is read unless SEAMLINE_CONFIG_DIR says otherwise, and a relative ``data_dir`` or
    ``models`` from the file lands inside the project, wherever the command was started from.
    Without a project they stay relative to the working directory, as before. Called with nothing
    (``seamline.load_settings()`` in a bot's own code), it finds the project as the command does: the
    working folder or one above it, unless SEAMLINE_CONFIG_DIR names the config.
    """
    if env is None and project is None and not os.environ.get("SEAMLINE_CONFIG_DIR"):
        project = find_project(Path.cwd())
    env = dict(os.environ if env is None else env)
    config_dir = Path(env.get("SEAMLINE_CONFIG_DIR") or (project / "config" if project else CONFIG_DIR))
    toml_path = config_dir / "seamline.toml"
    try:
        file = tomllib.loads(toml_path.read_text()) if toml_path.exists() else {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(toml_path), f"is not valid TOML ({exc})", "Fix the file or restore it from git") from exc
    server, storage, dialogue, webchat, nlu, actions = (
        file.get(k, {}) for k in ("server", "storage", "dialogue", "web", "nlu", "actions")
    )

    def get(name: str, section: dict[str, Any], key: str, default: object) -> object:
        return env.get(name) if env.get(name) not in (None, "") else section.get(key, default)

    def inside(path: Path, name: str) -> Path:  # a path from the file, not one typed in the environment
        return project / path if project and not env.get(name) and not path.is_absolute() else path

    data_dir = inside(Path(str(get("SEAMLINE_DATA_DIR", storage, "data_dir", "var"))), "SEAMLINE_DATA_DIR")
    language = str(get("SEAMLINE_DEFAULT_LANGUAGE", dialogue, "default_language", "en"))
    if language not in LANGUAGES:
        raise ConfigError("SEAMLINE_DEFAULT_LANGUAGE", f"{language!r} is not supported", "Use ru or en")
    level = str(env.get("SEAMLINE_LOG_LEVEL") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("SEAMLINE_LOG_LEVEL", f"{level!r} is not a log level", "Use DEBUG, INFO, WARNING or ERROR")
    return Settings(
        host=str(get("SEAMLINE_HOST", server, "host", "127.0.0.1")),
        port=_int("SEAMLINE_PORT", get("SEAMLINE_PORT", server, "port", 8080), 1, 65535, "SEAMLINE_PORT=8080"),
        database_url=_database_url(
            str(
                get("SEAMLINE_DATABASE_URL", storage, "database_url", "")
                or f"sqlite+aiosqlite:///{data_dir.as_posix()}/seamline.db"
            )
        ),
        redis_url=_redis_url(str(get("SEAMLINE_REDIS_URL", storage, "redis_url", ""))),
        secret_key=_secret_key(env.get("SEAMLINE_SECRET_KEY", ""), data_dir),
        config_dir=config_dir,
        data_dir=data_dir,
        default_language=language,
        fallbacks_before_human=_int(
            "SEAMLINE_FALLBACKS_BEFORE_HUMAN",
            get("SEAMLINE_FALLBACKS_BEFORE_HUMAN", dialogue, "fallbacks_before_human", 2),
            1,
            100,
            "SEAMLINE_FALLBACKS_BEFORE_HUMAN=2",
        ),
        web_rate_limit=_int(
            "SEAMLINE_WEB_RATE_LIMIT",
            get("SEAMLINE_WEB_RATE_LIMIT", webchat, "rate_limit", 30),
            0,
            100_000,
            "SEAMLINE_WEB_RATE_LIMIT=30",
        ),
        web_address_rate_limit=_int(
            "SEAMLINE_WEB_ADDRESS_RATE_LIMIT",
            get("SEAMLINE_WEB_ADDRESS_RATE_LIMIT", webchat, "address_rate_limit", 300),
            0,
            1_000_000,
            "SEAMLINE_WEB_ADDRESS_RATE_LIMIT=300",
        ),
        web_connections_per_address=_int(
            "SEAMLINE_WEB_CONNECTIONS_PER_ADDRESS",
            get("SEAMLINE_WEB_CONNECTIONS_PER_ADDRESS", webchat, "connections_per_address", 100),
            0,
            1_000_000,
            "SEAMLINE_WEB_CONNECTIONS_PER_ADDRESS=100",
        ),
        web_hello_timeout=_int(
            "SEAMLINE_WEB_HELLO_TIMEOUT",
            get("SEAMLINE_WEB_HELLO_TIMEOUT", webchat, "hello_timeout", 10),
            1,
            300,
            "SEAMLINE_WEB_HELLO_TIMEOUT=10 (seconds)",
        ),
        web_history_bytes=_int(
            "SEAMLINE_WEB_HISTORY_BYTES",
            get("SEAMLINE_WEB_HISTORY_BYTES", webchat, "history_bytes", 65536),
            16_384,
            16_777_216,
            "SEAMLINE_WEB_HISTORY_BYTES=65536",
        ),
        visitor_token_days=_int(
            "SEAMLINE_VISITOR_TOKEN_DAYS",
            get("SEAMLINE_VISITOR_TOKEN_DAYS", webchat, "token_days", 90),
            1,
            3650,
            "SEAMLINE_VISITOR_TOKEN_DAYS=90",
        ),
        old_secret_keys=_old_secret_keys(env.get("SEAMLINE_OLD_SECRET_KEYS", "")),
        web_allowed_origins=_origins(str(get("SEAMLINE_WEB_ALLOWED_ORIGINS", webchat, "allowed_origins", ""))),
        console_allowed_origins=_origins(
            str(get("SEAMLINE_CONSOLE_ALLOWED_ORIGINS", server, "console_allowed_origins", "")),
            "SEAMLINE_CONSOLE_ALLOWED_ORIGINS",
        ),
        web_identity_secret=_identity_secret(str(get("SEAMLINE_WEB_IDENTITY_SECRET", webchat, "identity_secret", ""))),
        link_guesses_per_address=_int(
            "SEAMLINE_LINK_GUESSES_PER_ADDRESS",
            get("SEAMLINE_LINK_GUESSES_PER_ADDRESS", dialogue, "link_guesses_per_address", 20),
            1,
            100_000,
            "SEAMLINE_LINK_GUESSES_PER_ADDRESS=20",
        ),
        link_guesses_per_hour=_int(
            "SEAMLINE_LINK_GUESSES_PER_HOUR",
            get("SEAMLINE_LINK_GUESSES_PER_HOUR", dialogue, "link_guesses_per_hour", 1000),
            1,
            10_000_000,
            "SEAMLINE_LINK_GUESSES_PER_HOUR=1000",
        ),
        actions_module=str(get("SEAMLINE_ACTIONS_MODULE", actions, "module", "actions")),
        action_endpoint=action_endpoint_url(str(get("SEAMLINE_ACTION_ENDPOINT", actions, "endpoint", ""))),
        action_timeout=_seconds(
            "SEAMLINE_ACTION_TIMEOUT",
            get("SEAMLINE_ACTION_TIMEOUT", actions, "timeout", 10),
            "SEAMLINE_ACTION_TIMEOUT=10",
        ),
        project_dir=project,
        channels=_channel_tables(file.get("channels", {}), toml_path),
        environ=env,
        log_level=level,
        nlu_models=inside(Path(str(get("SEAMLINE_NLU_MODELS", nlu, "models", ""))), "SEAMLINE_NLU_MODELS")
        if get("SEAMLINE_NLU_MODELS", nlu, "models", "")
        else None,
        order_pattern=_pattern(
            "SEAMLINE_ORDER_PATTERN", str(get("SEAMLINE_ORDER_PATTERN", nlu, "order_pattern", Settings.order_pattern))
        ),
        phone_region=_region(str(get("SEAMLINE_PHONE_REGION", nlu, "phone_region", "RU"))),
        oos_recall=_int(
            "SEAMLINE_OOS_RECALL",
            get("SEAMLINE_OOS_RECALL", nlu, "oos_recall_percent", 60),
            0,
            100,
            "SEAMLINE_OOS_RECALL=60",
        )
        / 100,
        trusted_proxies=_proxies(str(get("SEAMLINE_TRUSTED_PROXIES", server, "trusted_proxies", ""))),
        cookie_secure=_cookie_secure(str(get("SEAMLINE_COOKIE_SECURE", server, "cookie_secure", "auto"))),
        workers=_int("SEAMLINE_WORKERS", get("SEAMLINE_WORKERS", server, "workers", 1), 1, 64, "SEAMLINE_WORKERS=2"),
        log_format=_log_format(str(get("SEAMLINE_LOG_FORMAT", server, "log_format", "text"))),
        shutdown_grace=_seconds(
            "SEAMLINE_SHUTDOWN_GRACE",
            get("SEAMLINE_SHUTDOWN_GRACE", server, "shutdown_grace", 10),
            "SEAMLINE_SHUTDOWN_GRACE=10",
        ),
        metrics_token=str(env.get("SEAMLINE_METRICS_TOKEN", "")),
        outbox_max_attempts=_int(
            "SEAMLINE_OUTBOX_MAX_ATTEMPTS",
            get("SEAMLINE_OUTBOX_MAX_ATTEMPTS", server, "outbox_max_attempts", 10),
            1,
            1000,
            "SEAMLINE_OUTBOX_MAX_ATTEMPTS=10",
        ),
        agent_grace_seconds=_int(
            "SEAMLINE_AGENT_GRACE_SECONDS",
            get("SEAMLINE_AGENT_GRACE_SECONDS", server, "agent_grace_seconds", 90),
            65,
            86_400,
            "SEAMLINE_AGENT_GRACE_SECONDS=90 (more than a minute: open consoles report every 30-60 s)",
        ),
    )


def _channel_tables(raw: object, path: Path) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict) or not all(isinstance(t, dict) for t in raw.values()):
        raise ConfigError(
            f"{path} [channels]",
            "must hold one table per channel",
            "Write [channels.telegram], [channels.vk], ... each with key = value lines",
        )
    return {name: dict(table) for name, table in raw.items()}


def _log_format(raw: str) -> str:
    if raw.lower() not in ("text", "json"):
        raise ConfigError("SEAMLINE_LOG_FORMAT", f"{raw!r} is not a log format", "Use text or json")
    return raw.lower()


def _cookie_secure(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("auto", "true", "false"):
        raise ConfigError(
            "SEAMLINE_COOKIE_SECURE",
            f"{raw!r} is not auto, true or false",
            "Use auto (Secure when the console is reached over https, directly or through a "
            "trusted proxy), true (always; the console then works only over https) or false",
        )
    return value


def _proxies(raw: str) -> tuple[Network, ...]:
    try:
        return parse_networks(raw.split(","))
    except ValueError as exc:
        raise ConfigError(
            "SEAMLINE_TRUSTED_PROXIES",
            str(exc),
            "List the addresses or networks of your reverse proxies, e.g. "
            "SEAMLINE_TRUSTED_PROXIES=127.0.0.1,10.0.0.0/8 (empty: no proxy is trusted)",
        ) from None


def _pattern(name: str, raw: str) -> str:
    try:
        compiled = re.compile(raw)
    except re.error as exc:
        raise ConfigError(name, f"is not a valid regular expression ({exc})", r"Use e.g. (?:№|#)?(\d{4,12})") from None
    if compiled.groups > 1:
        raise ConfigError(name, "has more than one group", "Keep one capturing group around the order number")
    return raw


def _region(raw: str) -> str:
    import phonenumbers

    region = raw.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(
            "SEAMLINE_PHONE_REGION", f"{raw!r} is not a country code", "Use a two-letter code: RU, US, DE..."
        )
    return region
