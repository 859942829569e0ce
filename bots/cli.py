"""``seamline``: start a bot project, run the server, chat in the terminal, manage the database.

Every command but ``init`` works on one bot project (bots/project.py): ``--project PATH`` anywhere
on the line, else the config/ named by SEAMLINE_CONFIG_DIR (an explicit setting, as every variable
beats the files), else the working directory or the nearest folder above it holding
config/seamline.toml. The project's folder goes on sys.path, so its ``actions`` and its own modules
import.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from seamline.bots import customers_cli
from seamline.bots import project as projects
from seamline.handoff import commands as agent_commands
from seamline.nlu import commands as nlu_commands
from seamline.shared import logs
from seamline.shared.errors import ConfigError, SeamlineError

if TYPE_CHECKING:
    from seamline.bots.validate_domain import Finding
from seamline.shared.settings import Settings, load_settings


def _prepare_database(settings: Settings) -> None:
    """The embedded SQLite database is brought up to date by itself; PostgreSQL only on request."""
    from seamline.shared.storage.database import current_revision, upgrade

    if settings.is_embedded_db:
        upgrade(settings.database_url)
        return
    try:
        current, head = current_revision(settings.database_url)
    except Exception as exc:
        raise ConfigError(
            "SEAMLINE_DATABASE_URL",
            f"cannot connect to the database ({exc.__class__.__name__}: {exc})",
            "Check the host, port, user, password and that the server runs",
        ) from exc
    if current != head:
        raise ConfigError(
            "SEAMLINE_DATABASE_URL",
            f"the database schema is at {current or 'nothing'}, this Seamline needs {head}",
            "Run: seamline db upgrade",
        )


def _run(settings: Settings, workers: int | None = None) -> int:
    """Serve: this process alone (one worker), or a supervisor of ``workers`` processes (bots/workers.py)."""
    from seamline.bots import workers as supervisor

    index = supervisor.worker_index()
    if workers is not None and not 1 <= workers <= 64:
        raise ConfigError("--workers", f"{workers} is not a number of workers", "Use 1 to 64, e.g. --workers 2")
    count = 1 if index is not None else (workers or settings.workers)
    if count > 1:
        warn = logging.getLogger("seamline.supervisor").warning
        if not settings.redis_url:  # allowed (a trial), but nothing is shared between the workers then
            warn("%d workers without Redis: each keeps its own sessions, limits and live updates", count)
        elif settings.is_embedded_db:
            warn("%d workers on one SQLite file: their writes wait for each other; use PostgreSQL", count)
        return supervisor.supervise(
            count=count,
            host=settings.host,
            port=settings.port,
            grace=settings.shutdown_grace,
            prepare=lambda: _prepare_database(settings),
        )
    from aiohttp import web

    from seamline.bots.app import create_app
    from seamline.bots.ops import AccessLog

    _prepare_database(settings)
    url = f"http://{settings.host}:{settings.port}/"
    if index is None:
        print(
            f"Seamline is starting (database: {settings.database_url.split('@')[-1]}, sessions: "
            f"{'redis' if settings.redis_url else 'in-process'}).",
            flush=True,
        )

    def announce(_aiohttp_banner: str) -> None:  # called once the port is bound
        if index is None:
            print(f"Seamline is running. Open {url} in your browser (Ctrl+C to stop).", flush=True)
        else:  # the supervisor prints the line once every worker serves
            print(f"Seamline worker {index} (pid {os.getpid()}) is serving {url}", flush=True)
            supervisor.worker_ready()

    try:
        web.run_app(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            print=announce,
            reuse_port=index is not None or None,
            shutdown_timeout=settings.shutdown_grace,
            access_log_class=AccessLog,
        )
    except OSError as exc:
        raise ConfigError(
            "SEAMLINE_PORT",
            f"cannot listen on {settings.host}:{settings.port} ({exc.strerror})",
            "Stop the program using it or choose another port, e.g. SEAMLINE_PORT=8081",
        ) from exc
    return 0


async def _shell(settings: Settings) -> None:
    from seamline.bots.app import build
    from seamline.shared.message import Message, Reply

    class Console:
        channel = "console"

        async def send(self, address: str, reply: Reply) -> None:
            print(f"bot> {reply.text}")
            for button in reply.buttons:
                print(f"     [{button.title}]  (type {button.payload})")

    seamline = await build(settings)
    seamline.pipeline.register(Console())
    user = getpass.getuser()
    print("Chat with the Seamline bot through the same pipeline as every channel. Ctrl+D or /quit to leave.")
    try:
        while True:
            try:
                text = await asyncio.to_thread(input, "you> ")
            except EOFError:
                break
            if text.strip() in ("/quit", "/exit"):
                break
            if not text.strip():
                continue
            payload = text.strip() if text.strip().startswith("/") else None
            await seamline.pipeline.handle(
                Message(channel="console", address=user, sender=user, text=text.strip(), payload=payload)
            )
    finally:
        await seamline.close()


def _project_option(argv: list[str]) -> tuple[Path | None, list[str]]:
    """``--project PATH`` (or ``--project=PATH``) taken out of the line wherever it is, so it works
    before or after any subcommand, nested ones too (``seamline nlu train --project mybot``)."""
    rest, project, i = [], None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        if arg == "--project" and i + 1 < len(argv):
            project, i = Path(argv[i + 1]), i + 2
            continue
        if arg.startswith("--project="):
            project = Path(arg.split("=", 1)[1])
        else:
            rest.append(arg)
        i += 1
    return project, rest


def main(argv: list[str] | None = None) -> int:
    project_path, argv = _project_option(list(sys.argv[1:] if argv is None else argv))
    parser = argparse.ArgumentParser(
        prog="seamline",
        description="Omnichannel customer chat.",
        epilog="Every command but init works on the bot project in this folder (or a folder above it); "
        "--project PATH, anywhere on the line, names another.",
    )
    parser.add_argument("--project", metavar="PATH", help="the bot project to work on (the folder holding config/)")
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="write a new bot project: config, actions, tests, README")
    init.add_argument("path", type=Path, metavar="PATH", help="a new (or empty) folder")
    init.add_argument(
        "--template",
        choices=projects.TEMPLATES,
        default="minimal",
        help="minimal: greet, goodbye, thanks, a person; retail: the demo shop (default: minimal)",
    )
    init.add_argument(
        "--language",
        default="en,ru",
        metavar="LANGS",
        help="ru, en or both, comma-separated; the first is the default language (default: en,ru)",
    )
    run = commands.add_parser("run", help="serve the web chat (and every configured channel)")
    run.add_argument(
        "--rasa-project",
        type=Path,
        metavar="PATH",
        help="serve a Rasa 3.x project as it is: its domain, data, endpoints and credentials (docs/rasa.md)",
    )
    run.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes sharing the port (default: SEAMLINE_WORKERS, else 1; docs/operations.md)",
    )
    shell = commands.add_parser("shell", help="chat with the bot in this terminal")
    shell.add_argument("--rasa-project", type=Path, metavar="PATH", help="chat with a Rasa 3.x project (docs/rasa.md)")
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply schema migrations")
    db_commands.add_parser("current", help="show the schema revision")
    test = commands.add_parser("test", help="run conversation scripts (tests/conversations/*.yml) through the bot")
    test.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="scripts or folders of them")
    test.add_argument("--junit-xml", type=Path, metavar="FILE", help="also write the results as JUnit XML")
    data = commands.add_parser("data", help="check the bot's data")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    validate = data_commands.add_parser("validate", help="find mistakes in intents, responses, domain and rules")
    validate.add_argument("--strict", action="store_true", help="fail on warnings too")
    validate.add_argument(
        "--rasa-project", type=Path, metavar="PATH", help="check a Rasa 3.x project as `run --rasa-project` reads it"
    )
    nlu_commands.add_parser(commands)
    agent_commands.add_parser(commands)
    customers_cli.add_parser(commands)
    args = parser.parse_args(argv)

    try:
        if args.command == "init":
            return _init(args)
        env = dict(os.environ)
        if args.command in ("run", "shell") and args.rasa_project is not None:
            return _run_rasa(
                args.rasa_project, env, shell=args.command == "shell", workers=getattr(args, "workers", None)
            )
        if args.command == "data" and args.rasa_project is not None:
            from seamline.bots.validate import validate_rasa

            return _findings(validate_rasa(args.rasa_project, env), strict=args.strict)
        project = projects.resolve(project_path, env, Path.cwd())
        if project is not None:
            sys.path.insert(0, str(project))  # the project's actions/ and own modules import
        if project_path is not None:
            env.pop("SEAMLINE_CONFIG_DIR", None)  # typed on this very line: it wins over the environment
        settings = load_settings(env, project=project)
        logs.configure(settings.log_level, settings.log_format)
        if args.command == "run":
            return _run(settings, args.workers)
        elif args.command == "shell":
            _prepare_database(settings)
            asyncio.run(_shell(settings))
        elif args.command == "db":
            from seamline.shared.storage.database import current_revision, upgrade

            if args.db_command == "upgrade":
                upgrade(settings.database_url)
            current, head = current_revision(settings.database_url)
            print(f"database schema: {current or 'empty'} (latest: {head})")
        elif args.command == "test":
            from seamline.bots import conversations_cli

            # the reports, not the bot's log
            logging.getLogger().setLevel(max(logging.WARNING, logging.getLogger().level))
            return conversations_cli.main(project or settings.config_dir.parent, args.paths, junit_xml=args.junit_xml)
        elif args.command == "data":
            return _validate(settings, project, strict=args.strict)
        elif args.command == "nlu":
            return nlu_commands.run(args, settings)
        elif args.command == "agents":
            _prepare_database(settings)
            return agent_commands.run(args, settings)
        elif args.command == "customers":
            _prepare_database(settings)
            return customers_cli.run(args, settings)
    except ConfigError as exc:
        print(f"seamline: configuration error: {exc}", file=sys.stderr)
        return 2
    except SeamlineError as exc:
        print(f"seamline: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _run_rasa(path: Path, env: dict[str, str], *, shell: bool = False, workers: int | None = None) -> int:
    """``seamline run --rasa-project PATH``: the Rasa files read as they are, at every start (no
    seamline.toml; bots/dialogue/rasa.py). What is not supported is said once, here."""
    from seamline.bots.dialogue.rasa import describe, run_settings

    settings, project = run_settings(path, env)
    logs.configure(settings.log_level, settings.log_format)
    for line in describe(project, settings):
        print(line, flush=True)
    if shell:
        _prepare_database(settings)
        asyncio.run(_shell(settings))
        return 0
    return _run(settings, workers)


def _validate(settings: Settings, project: Path | None, *, strict: bool) -> int:
    """``seamline data validate``: one line per finding; 1 on errors (on warnings too with --strict)."""
    from seamline.bots.validate import validate_project

    root = project or settings.config_dir.parent
    findings = validate_project(settings.config_dir, code=[root / "actions", *_module_folder(settings.actions_module)])
    return _findings(findings, strict=strict)


def _findings(findings: list[Finding], *, strict: bool) -> int:
    for finding in findings:
        print(finding)
    errors = sum(f.level == "error" for f in findings)
    warnings = len(findings) - errors
    print(f"{errors} error(s), {warnings} warning(s)", file=sys.stderr)
    return 1 if errors or (strict and warnings) else 0


def _module_folder(module: str) -> list[Path]:
    """Where the actions module's code is (it may be a package's, e.g. the retail template's)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return [Path(p) for p in spec.submodule_search_locations]
    return [Path(spec.origin).parent] if spec.origin else []


def _init(args: argparse.Namespace) -> int:
    path = projects.init(args.path, template=args.template, langs=projects.languages(args.language))
    where = args.path if not args.path.is_absolute() else path
    print(
        f"A new Seamline bot ({args.template}) is in {path}. Next:\n"
        f"  cd {where}\n  seamline nlu train\n  seamline shell      (or: seamline run, then open the printed address)\n"
        f"  seamline test       (its conversation scripts; pytest runs them too)\nSee {where / 'README.md'} for adding an intent."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
