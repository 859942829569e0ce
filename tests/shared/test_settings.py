"""Settings as a user meets them: defaults, the file, the environment and clear errors."""

from __future__ import annotations

import re
import shutil
import stat
from pathlib import Path

import pytest

from seamline.shared.errors import ConfigError
from seamline.shared.settings import CONFIG_DIR, load_settings

GOOD_KEY = "a-long-enough-secret-key-0123456789"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user who set nothing but where the data lives (so nothing is written in the repo)."""
    return {"SEAMLINE_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A private copy of config/ that a test may edit."""
    return Path(shutil.copytree(CONFIG_DIR, tmp_path / "config"))


class TestDefaults:
    @pytest.mark.parametrize("with_file", [True, False], ids=["shipped-seamline.toml", "no-seamline.toml"])
    def test_embedded_defaults(self, env, tmp_path, with_file):
        if not with_file:
            (tmp_path / "empty-config").mkdir()
            env["SEAMLINE_CONFIG_DIR"] = str(tmp_path / "empty-config")
        settings = load_settings(env)
        assert (settings.host, settings.port) == ("127.0.0.1", 8080)
        # the embedded database lives in the data dir, beside the generated key
        assert settings.database_url == f"sqlite+aiosqlite:///{Path(env['SEAMLINE_DATA_DIR']).as_posix()}/seamline.db"
        assert settings.is_embedded_db
        assert settings.redis_url == ""  # in-process sessions
        assert settings.default_language == "en"
        assert settings.fallbacks_before_human == 2
        assert settings.web_rate_limit == 30
        assert settings.log_level == "INFO"
        assert settings.data_dir == tmp_path / "data"

    def test_the_secret_key_is_not_in_the_repr(self, env):
        settings = load_settings({**env, "SEAMLINE_SECRET_KEY": GOOD_KEY})
        assert GOOD_KEY not in repr(settings)


class TestFileAndEnvironment:
    def test_the_file_sets_values_and_the_environment_wins(self, env, config_dir):
        toml = config_dir / "seamline.toml"
        toml.write_text(
            toml.read_text()
            .replace("port = 8080", "port = 9000")
            .replace('default_language = "en"', 'default_language = "ru"')
            .replace("rate_limit = 30", "rate_limit = 5")
        )
        env["SEAMLINE_CONFIG_DIR"] = str(config_dir)

        from_file = load_settings(env)
        assert (from_file.port, from_file.default_language, from_file.web_rate_limit) == (9000, "ru", 5)
        assert from_file.config_dir == config_dir

        overridden = load_settings(
            {
                **env,
                "SEAMLINE_PORT": "9100",
                "SEAMLINE_DEFAULT_LANGUAGE": "en",
                "SEAMLINE_WEB_RATE_LIMIT": "0",
                "SEAMLINE_HOST": "0.0.0.0",
                "SEAMLINE_REDIS_URL": "redis://127.0.0.1:6379/1",
                "SEAMLINE_LOG_LEVEL": "debug",
            }
        )
        assert (overridden.port, overridden.default_language, overridden.web_rate_limit) == (9100, "en", 0)
        assert overridden.host == "0.0.0.0"
        assert overridden.redis_url == "redis://127.0.0.1:6379/1"
        assert overridden.log_level == "DEBUG"

    def test_an_empty_variable_falls_back_to_the_file(self, env, config_dir):
        toml = config_dir / "seamline.toml"
        toml.write_text(toml.read_text().replace("port = 8080", "port = 9000"))
        settings = load_settings({**env, "SEAMLINE_CONFIG_DIR": str(config_dir), "SEAMLINE_PORT": ""})
        assert settings.port == 9000

    @pytest.mark.parametrize(
        "given, expected",
        [
            ("postgresql://shop:pw@db.example.com:5432/shop", "postgresql+asyncpg://shop:pw@db.example.com:5432/shop"),
            ("postgres://shop:pw@db.example.com/shop", "postgresql+asyncpg://shop:pw@db.example.com/shop"),
            ("postgresql+asyncpg://shop@db.example.com/shop", "postgresql+asyncpg://shop@db.example.com/shop"),
            ("sqlite:////srv/seamline/seamline.db", "sqlite+aiosqlite:////srv/seamline/seamline.db"),
        ],
        ids=["postgresql", "postgres", "postgresql+asyncpg", "sqlite"],
    )
    def test_database_urls_get_the_async_driver(self, env, given, expected):
        settings = load_settings({**env, "SEAMLINE_DATABASE_URL": given})
        assert settings.database_url == expected
        assert settings.is_embedded_db == expected.startswith("sqlite")


class TestErrors:
    @pytest.mark.parametrize(
        "name, value, problem, fix",
        [
            ("SEAMLINE_PORT", "abc", "'abc' is not a whole number", "SEAMLINE_PORT=8080"),
            ("SEAMLINE_PORT", "70000", "70000 is outside 1..65535", "SEAMLINE_PORT=8080"),
            (
                "SEAMLINE_DATABASE_URL",
                "mysql://shop@db.example.com/shop",
                "unsupported database URL",
                "postgresql+asyncpg://",
            ),
            ("SEAMLINE_REDIS_URL", "http://x", "a http:// URL is not a Redis URL", "redis://"),
            ("SEAMLINE_SECRET_KEY", "short", "shorter than 16 characters", "secrets.token_urlsafe"),
            ("SEAMLINE_DEFAULT_LANGUAGE", "de", "'de' is not supported", "Use ru or en"),
            ("SEAMLINE_LOG_LEVEL", "LOUD", "'LOUD' is not a log level", "Use DEBUG, INFO, WARNING or ERROR"),
            ("SEAMLINE_WEB_RATE_LIMIT", "-1", "-1 is outside 0..100000", "SEAMLINE_WEB_RATE_LIMIT=30"),
        ],
        ids=[
            "port-not-a-number",
            "port-too-big",
            "mysql-url",
            "http-redis-url",
            "short-secret-key",
            "language-de",
            "log-level-loud",
            "negative-rate-limit",
        ],
    )
    def test_a_bad_setting_names_itself_what_is_wrong_and_the_fix(self, env, name, value, problem, fix):
        with pytest.raises(ConfigError) as caught:
            load_settings({**env, name: value})
        error = caught.value
        assert error.setting == name
        message = str(error)
        assert message.startswith(f"{name}: ")
        assert problem in message
        assert fix in message

    @pytest.mark.parametrize(
        "url",
        [
            "mysql://shop:Pa55-w0rd-XYZ@db.example.com:3306/shop",
            "postgresql+psycopg2://shop:Pa55-w0rd-XYZ@db.example.com/shop",
            "mssql://shop:Pa55-w0rd-XYZ@db.example.com/shop",
        ],
        ids=["mysql", "postgresql+psycopg2", "mssql"],
    )
    def test_a_database_password_never_appears_in_the_error(self, env, url):
        with pytest.raises(ConfigError) as caught:
            load_settings({**env, "SEAMLINE_DATABASE_URL": url})
        error = caught.value
        assert error.setting == "SEAMLINE_DATABASE_URL"
        for text in (str(error), repr(error), error.problem, error.fix, *map(str, error.args)):
            assert "Pa55-w0rd-XYZ" not in text
        assert "db.example.com" in str(error)  # still says which server it was about

    def test_a_broken_seamline_toml_names_the_file(self, env, config_dir):
        toml = config_dir / "seamline.toml"
        toml.write_text(toml.read_text().replace("[server]", "[server", 1))
        with pytest.raises(ConfigError) as caught:
            load_settings({**env, "SEAMLINE_CONFIG_DIR": str(config_dir)})
        error = caught.value
        assert error.setting == str(toml)
        assert str(toml) in str(error)
        assert "not valid TOML" in str(error)
        assert "restore it from git" in str(error)


class TestSecretKey:
    def test_generated_once_kept_private_and_reused(self, env, tmp_path):
        key_file = tmp_path / "data" / "secret_key"
        assert not key_file.exists()

        first = load_settings(env)
        assert key_file.exists()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert len(first.secret_key) >= 32
        assert key_file.read_text().strip() == first.secret_key

        second = load_settings(env)
        assert second.secret_key == first.secret_key

    def test_a_given_key_wins_and_nothing_is_written(self, env, tmp_path):
        settings = load_settings({**env, "SEAMLINE_SECRET_KEY": GOOD_KEY})
        assert settings.secret_key == GOOD_KEY
        assert not (tmp_path / "data" / "secret_key").exists()

    def test_each_data_dir_gets_its_own_key(self, tmp_path):
        one = load_settings({"SEAMLINE_DATA_DIR": str(tmp_path / "one")})
        two = load_settings({"SEAMLINE_DATA_DIR": str(tmp_path / "two")})
        assert one.secret_key != two.secret_key


def test_the_default_data_dir_is_var_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.database_url == "sqlite+aiosqlite:///var/seamline.db"
    assert (tmp_path / "var" / "secret_key").exists()


def test_an_empty_stored_key_is_a_clear_error(tmp_path):
    (tmp_path / "secret_key").write_text("")
    with pytest.raises(ConfigError, match="secret_key: holds no usable key"):
        load_settings({"SEAMLINE_DATA_DIR": str(tmp_path)})


def test_settings_never_show_passwords_in_their_repr(tmp_path):
    settings = load_settings(
        {
            "SEAMLINE_DATA_DIR": str(tmp_path),
            "SEAMLINE_DATABASE_URL": "postgresql://u:Sup3rSecret@db/x",
            "SEAMLINE_REDIS_URL": "redis://:R3disPass@cache:6379/0",
        }
    )
    assert "Sup3rSecret" not in repr(settings) and "R3disPass" not in repr(settings)


def test_allowed_origins_are_a_list_of_origins(tmp_path):
    env = {"SEAMLINE_DATA_DIR": str(tmp_path)}
    settings = load_settings({**env, "SEAMLINE_WEB_ALLOWED_ORIGINS": "https://shop.example/, http://localhost:3000"})
    assert settings.web_allowed_origins == ("https://shop.example", "http://localhost:3000")
    with pytest.raises(
        ConfigError, match=re.escape("SEAMLINE_WEB_ALLOWED_ORIGINS: 'https://shop.example/chat' is not an origin")
    ):
        load_settings({**env, "SEAMLINE_WEB_ALLOWED_ORIGINS": "https://shop.example/chat"})
