"""``seamline``: run the server, chat in the terminal, manage the database."""
from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys

from seamline.bots import customers_cli
from seamline.handoff import commands as agent_commands
from seamline.nlu import commands as nlu_commands
from seamline.shared.errors import ConfigError, SeamlineError
from seamline.shared.settings import Settings, load_settings


def _prepare_database(settings: Settings) -> None:
    """The embedded SQLite database is brought up to date by itself; PostgreSQL only on request."""
    from seamline.shared.storage.database import current_revision, upgrade

    if settings.is_embedded_db:
        upgrade(settings.database_url)
        return
    try:
        current, head = current_revision(settings.database_url)
    except Exception as exc:  # noqa: BLE001 - any driver error means the same to the user
        raise ConfigError("SEAMLINE_DATABASE_URL", f"cannot connect to the database ({exc.__class__.__name__}: "
                          f"{exc})", "Check the host, port, user, password and that the server runs") from exc
    if current != head:
        raise ConfigError("SEAMLINE_DATABASE_URL", f"the database schema is at {current or 'nothing'}, "
                          f"this Seamline needs {head}", "Run: seamline db upgrade")


def _run(settings: Settings) -> None:
    from aiohttp import web

    from seamline.bots.app import create_app

    _prepare_database(settings)
    url = f"http://{settings.host}:{settings.port}/"
    print(f"Seamline is starting (database: {settings.database_url.split('@')[-1]}, sessions: "
          f"{'redis' if settings.redis_url else 'in-process'}).", flush=True)

    def announce(_aiohttp_banner: str) -> None:  # called once the port is bound
        print(f"Seamline is running. Open {url} in your browser (Ctrl+C to stop).", flush=True)

    try:
        web.run_app(create_app(settings), host=settings.host, port=settings.port, print=announce)
    except OSError as exc:
        raise ConfigError("SEAMLINE_PORT", f"cannot listen on {settings.host}:{settings.port} ({exc.strerror})",
                          "Stop the program using it or choose another port, e.g. SEAMLINE_PORT=8081") from exc


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
            await seamline.pipeline.handle(Message(channel="console", address=user, sender=user,
                                                   text=text.strip(), payload=payload))
    finally:
        await seamline.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seamline", description="Omnichannel customer chat.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="serve the web chat (and every configured channel)")
    commands.add_parser("shell", help="chat with the bot in this terminal")
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply schema migrations")
    db_commands.add_parser("current", help="show the schema revision")
    nlu_commands.add_parser(commands)
    agent_commands.add_parser(commands)
    customers_cli.add_parser(commands)
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("alembic").setLevel(logging.WARNING)
        if args.command == "run":
            _run(settings)
        elif args.command == "shell":
            _prepare_database(settings)
            asyncio.run(_shell(settings))
        elif args.command == "db":
            from seamline.shared.storage.database import current_revision, upgrade

            if args.db_command == "upgrade":
                upgrade(settings.database_url)
            current, head = current_revision(settings.database_url)
            print(f"database schema: {current or 'empty'} (latest: {head})")
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


if __name__ == "__main__":
    sys.exit(main())
