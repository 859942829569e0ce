"""``seamline agents add | list``: the people who work in the console."""
from __future__ import annotations

import asyncio
import getpass
import os
import sys

from shared.settings import Settings


def add_parser(commands) -> None:
    agents = commands.add_parser("agents", help="manage the agents who use the console")
    sub = agents.add_subparsers(dest="agents_command", required=True)
    add = sub.add_parser("add", help="create an agent (the password is asked for, or read from "
                                     "SEAMLINE_AGENT_PASSWORD, or from stdin when it is not a terminal)")
    add.add_argument("email")
    add.add_argument("--name", required=True)
    add.add_argument("--queues", default="", help="comma-separated queues (skills), e.g. support,sales; "
                                                   "empty: every queue")
    add.add_argument("--role", choices=("agent", "admin"), default="agent")
    add.add_argument("--capacity", type=int, default=5, help="conversations at once (default 5)")
    sub.add_parser("list", help="list the agents")


def _password() -> str:
    if os.environ.get("SEAMLINE_AGENT_PASSWORD"):
        return os.environ["SEAMLINE_AGENT_PASSWORD"]
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password (10+ characters): ")
    if getpass.getpass("Again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def run(args, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))


async def _run(args, settings: Settings) -> int:
    from handoff.agents import AgentStore
    from shared.storage.database import create_engine
    from shared.storage.sql import SqlChatStore

    store = SqlChatStore(engine=create_engine(settings.database_url))
    agents = AgentStore(store)
    try:
        if args.agents_command == "add":
            try:
                agent = await agents.add(args.email, name=args.name, password=_password(),
                                         queues=[q for q in args.queues.split(",") if q.strip()],
                                         role=args.role, capacity=args.capacity)
            except ValueError as exc:
                print(f"seamline: {exc}", file=sys.stderr)
                return 2
            print(f"agent {agent.email} ({agent.role}, queues: {', '.join(agent.queues) or 'all'}, "
                  f"capacity {agent.capacity}) created; log in at /console/")
        else:
            for agent in await agents.all():
                print(f"{agent.email:<32} {agent.name:<24} {agent.role:<6} {agent.status:<8} "
                      f"capacity {agent.capacity}  queues: {', '.join(agent.queues) or 'all'}")
    finally:
        await store.close()
        await store.engine.dispose()
    return 0
