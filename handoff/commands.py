"""``seamline agents add | list | set | remove``: the people who work in the console.

A new password, a new role or a removal ends the agent's logins. With ``SEAMLINE_REDIS_URL`` set the
serving processes hear of it at once; on the embedded defaults the server notices within a minute
(its token cache, then its open sockets' re-check)."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from datetime import timedelta

from seamline.shared.message import utcnow
from seamline.shared.settings import Settings


def add_parser(commands) -> None:
    agents = commands.add_parser("agents", help="manage the agents who use the console")
    sub = agents.add_subparsers(dest="agents_command", required=True)
    add = sub.add_parser(
        "add",
        help="create an agent (the password is asked for, or read from "
        "SEAMLINE_AGENT_PASSWORD, or from stdin when it is not a terminal)",
    )
    add.add_argument("email")
    add.add_argument("--name", required=True)
    add.add_argument(
        "--queues", default="", help="comma-separated queues (skills), e.g. support,sales; empty: every queue"
    )
    add.add_argument("--role", choices=("agent", "admin"), default="agent")
    add.add_argument("--capacity", type=int, default=5, help="conversations at once (default 5)")
    sub.add_parser("list", help="list the agents")
    change = sub.add_parser("set", help="change an agent (a new password or role logs them out everywhere)")
    change.add_argument("email")
    change.add_argument("--name")
    change.add_argument("--queues", help="comma-separated queues (skills); empty: every queue")
    change.add_argument("--role", choices=("agent", "admin"))
    change.add_argument("--capacity", type=int)
    change.add_argument(
        "--password", action="store_true", help="set a new password (asked for, or SEAMLINE_AGENT_PASSWORD, or stdin)"
    )
    remove = sub.add_parser(
        "remove", help="delete an agent: logged out everywhere; what they held goes back to its queue within a minute"
    )
    remove.add_argument("email")


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
    from seamline.handoff.agents import AgentStore
    from seamline.shared.storage.database import create_engine
    from seamline.shared.storage.sql import SqlChatStore

    store = SqlChatStore(engine=create_engine(settings.database_url))
    agents = AgentStore(store)
    try:
        if args.agents_command == "add":
            try:
                agent = await agents.add(
                    args.email,
                    name=args.name,
                    password=_password(),
                    queues=[q for q in args.queues.split(",") if q.strip()],
                    role=args.role,
                    capacity=args.capacity,
                )
            except ValueError as exc:
                print(f"seamline: {exc}", file=sys.stderr)
                return 2
            print(
                f"agent {agent.email} ({agent.role}, queues: {', '.join(agent.queues) or 'all'}, "
                f"capacity {agent.capacity}) created; log in at /console/"
            )
        elif args.agents_command == "set":
            try:
                agent = await agents.change(
                    args.email,
                    name=args.name,
                    role=args.role,
                    capacity=args.capacity,
                    queues=None if args.queues is None else args.queues.split(","),
                    password=_password() if args.password else None,
                )
            except (ValueError, LookupError) as exc:
                print(f"seamline: {exc.args[0]}", file=sys.stderr)
                return 2
            if args.password or args.role:
                await _tell_servers(settings, agent.id)
            print(
                f"agent {agent.email} ({agent.role}, queues: {', '.join(agent.queues) or 'all'}, "
                f"capacity {agent.capacity}) changed"
                + ("; logged out everywhere" if args.password or args.role else "")
            )
        elif args.agents_command == "remove":
            try:
                agent = await agents.remove(args.email)
            except LookupError as exc:
                print(f"seamline: {exc.args[0]}", file=sys.stderr)
                return 2
            await _tell_servers(settings, agent.id)
            print(
                f"agent {agent.email} removed and logged out; the conversations they held go back to their "
                "queues within a minute"
            )
        else:
            here_since = utcnow() - timedelta(seconds=settings.agent_grace_seconds)
            for agent in await agents.all():
                # A status is what the agent (or an admin) set; whether anyone is there is when they
                # were last seen (a server that stopped cannot set its agents offline).
                gone = agent.status != "offline" and (agent.seen_at is None or agent.seen_at < here_since)
                status = f"{agent.status}, not here" if gone else agent.status
                print(
                    f"{agent.email:<32} {agent.name:<24} {agent.role:<6} {status:<8} "
                    f"capacity {agent.capacity}  queues: {', '.join(agent.queues) or 'all'}  "
                    f"seen: {_ago(agent.seen_at)}"
                )
    finally:
        await store.close()
        await store.engine.dispose()
    return 0


async def _tell_servers(settings: Settings, agent_id: str) -> None:
    """Serving processes sharing Redis close the agent's consoles and forget their tokens now."""
    if not settings.redis_url:
        return
    from redis.asyncio import Redis

    from seamline.handoff.inbox import RedisInbox

    inbox = RedisInbox(client=Redis.from_url(settings.redis_url))
    try:
        await inbox.revoke(agent_id)
    finally:
        await inbox.close()


def _ago(when) -> str:
    if when is None:
        return "never"
    minutes = int((utcnow() - when).total_seconds() // 60)
    return "just now" if minutes < 1 else f"{minutes} min ago" if minutes < 120 else f"{minutes // 60} h ago"
