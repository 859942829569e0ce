"""``seamline customers show | links | unlink | export | erase``: one customer, for support and privacy requests.

A customer is named by its id or by one of its identities, ``CHANNEL:EXTERNAL_ID`` (``telegram:12345``,
``web:<visitor id>``, ``site:<user>``). The commands read and change the database directly and,
when Redis is configured, the shared sessions; no model is loaded and no message is parsed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from seamline.shared.errors import SeamlineError
from seamline.shared.settings import Settings

if TYPE_CHECKING:  # imported when a command runs: `seamline --help` stays quick
    from seamline.shared.linking import Linker
    from seamline.shared.session import SessionStore
    from seamline.shared.storage.customers import SqlCustomerStore
    from seamline.shared.storage.sql import SqlChatStore

WHO_HELP = "customer id, or an identity as CHANNEL:EXTERNAL_ID (telegram:12345, web:<visitor id>, site:<user>)"


class NotFound(SeamlineError):
    """No such customer or link (exit 1)."""


def add_parser(commands) -> None:
    customers = commands.add_parser("customers", help="show, export, erase and unlink customers")
    sub = customers.add_subparsers(dest="customers_command", required=True)
    show = sub.add_parser("show", help="profile, identities, links and message count of a customer")
    show.add_argument("who", metavar="WHO", help=WHO_HELP)
    links = sub.add_parser("links", help="the customer's links, one a line, with their ids")
    links.add_argument("who", metavar="WHO", help=WHO_HELP)
    unlink = sub.add_parser("unlink", help="undo a link: both customers get back what was theirs")
    unlink.add_argument("link_id", metavar="LINK_ID")
    unlink.add_argument(
        "--by", metavar="NAME", default=None, help="who undoes it, for the record (default: your user name)"
    )
    export = sub.add_parser("export", help="everything kept about a customer, as JSON")
    export.add_argument("who", metavar="WHO", help=WHO_HELP)
    export.add_argument("--output", "-o", type=Path, help="write to this file (created readable by you only)")
    erase = sub.add_parser("erase", help="delete a customer's messages, identities and profile")
    erase.add_argument("who", metavar="WHO", help=WHO_HELP)
    erase.add_argument("--yes", action="store_true", help="really erase (without it: say what would be erased)")
    erase.add_argument(
        "--by", metavar="NAME", default=None, help="who erases it, for the record (default: your user name)"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``customers`` command on a migrated database; returns the exit code."""
    return asyncio.run(_COMMANDS[args.customers_command](args, settings))


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        return "cli"


@dataclass
class _Stores:
    chat: SqlChatStore
    customers: SqlCustomerStore
    sessions: SessionStore
    linker: Linker


@contextlib.asynccontextmanager
async def _stores(settings: Settings):
    from seamline.bots.app import build_limiter, build_sessions
    from seamline.shared.linking import Linker
    from seamline.shared.storage.customers import SqlCustomerStore
    from seamline.shared.storage.database import create_engine
    from seamline.shared.storage.sql import SqlChatStore

    engine = create_engine(settings.database_url)
    chat = SqlChatStore(engine=engine)
    sessions = build_sessions(settings)
    customers = SqlCustomerStore(chat)
    limiter = build_limiter(settings)  # the Linker's guessing budgets; undo and erase take none
    try:
        yield _Stores(
            chat,
            customers,
            sessions,
            Linker(customers=customers, sessions=sessions, secret_key=settings.secret_key, limiter=limiter),
        )
    finally:
        try:
            await chat.close()
            await sessions.close()
            await limiter.close()
        finally:
            await engine.dispose()


async def _profile(stores: _Stores, who: str):
    """The profile of the customer named by ``who`` (an id or CHANNEL:EXTERNAL_ID); NotFound if none."""
    if ":" in who:
        channel, external_id = who.split(":", 1)
        found = await stores.chat.fresh_customer(channel, external_id)
        if found is None:
            raise NotFound(f"no customer has the {channel} identity {external_id!r}")
        customer_id = found.id
    else:
        customer_id = who
    profile = await stores.customers.profile(customer_id)
    if profile is None:
        raise NotFound(f"no customer {who!r} (give a customer id or CHANNEL:EXTERNAL_ID, e.g. telegram:12345)")
    return profile


def _note_in_process(settings: Settings) -> None:
    """Without Redis a running server keeps sessions and identities of its own that this process cannot reach."""
    if not settings.redis_url:
        print(
            "seamline: note: sessions live inside the server process (no SEAMLINE_REDIS_URL): restart a running "
            "'seamline run' now, so that it forgets what it holds about these customers",
            file=sys.stderr,
        )


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "-"


def _link_line(link, customer_id: str | None = None) -> str:
    if customer_id == link.survivor_id:
        what = f"took in {link.merged_id}"
    elif customer_id == link.merged_id:
        what = f"merged into {link.survivor_id}"
    else:
        what = f"{link.merged_id} into {link.survivor_id}"
    line = f"{link.id}  {_when(link.created_at)}  {link.method:<13}  {what}"
    if link.conflicts:
        line += "  conflicts: " + ", ".join(sorted({str(c.get("key")) for c in link.conflicts}))
    return line + (f"  UNDONE {_when(link.undone_at)}" if link.undone_at else "")


async def _show(args, settings: Settings) -> int:
    async with _stores(settings) as stores:
        profile = await _profile(stores, args.who)
        links = await stores.customers.links(profile.id)
        counts = await stores.customers.counts(profile.id)
    print(f"customer {profile.id}")
    if profile.merged_into:
        print(f"  MERGED INTO {profile.merged_into} (its identities and messages are that customer's now)")
    if profile.erased_at:
        print(f"  ERASED {_when(profile.erased_at)}")
    print(f"  name:         {profile.name or '-'}")
    print(f"  language:     {profile.language or '-'}")
    print(f"  last channel: {profile.last_channel or '-'}")
    print(f"  first seen:   {_when(profile.created_at)}")
    print(f"  last seen:    {_when(profile.last_seen_at)}")
    keys = [k for k in ("name", "language") if k in profile.attribute_meta] + sorted(profile.attributes)
    print("  attributes:" + ("" if keys else "   -"))
    for key in keys:
        value = getattr(profile, key) if key in ("name", "language") else profile.attributes[key]
        meta = profile.attribute_meta.get(key) or {}
        source = ", ".join(
            part for part in (meta.get("source"), "verified" if meta.get("verified") else None, meta.get("at")) if part
        )
        print(f"    {key}: {json.dumps(value, ensure_ascii=False)}" + (f"  ({source})" if source else ""))
    print(f"identities ({len(profile.identities)}):")
    for identity in profile.identities:
        print(f"  {identity.channel}:{identity.external_id}  {'reachable' if identity.reachable else 'unreachable'}")
    print(f"links ({len(links)}):")
    for link in links:
        print(f"  {_link_line(link, profile.id)}")
    print(f"messages: {counts['messages']}  conversations: {counts['conversations']}")
    return 0


async def _links(args, settings: Settings) -> int:
    async with _stores(settings) as stores:
        profile = await _profile(stores, args.who)
        links = await stores.customers.links(profile.id)
    for link in links:
        print(_link_line(link, profile.id))
    if not links:
        print(f"customer {profile.id} has no links", file=sys.stderr)
    return 0


async def _unlink(args, settings: Settings) -> int:
    by = args.by or _user()
    async with _stores(settings) as stores:
        try:
            record = await stores.linker.unlink(args.link_id, by=by)
        except LookupError:
            raise NotFound(f"no link {args.link_id!r} (see: seamline customers links WHO)") from None
        except ValueError as exc:
            raise SeamlineError(str(exc)) from None
        survivor = await stores.chat.identities(record.survivor_id)
        merged = await stores.chat.identities(record.merged_id)
    print(f"link {record.id} undone by {by}")
    for label, customer_id, identities in (
        ("kept", record.survivor_id, survivor),
        ("restored", record.merged_id, merged),
    ):
        names = " ".join(f"{i.channel}:{i.external_id}" for i in identities) or "-"
        print(f"{label:<8}  {customer_id}  {names}")
    _note_in_process(settings)
    return 0


async def _export(args, settings: Settings) -> int:
    async with _stores(settings) as stores:
        profile = await _profile(stores, args.who)
        data = await stores.customers.export(profile.id)
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when the file was there before
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
    except OSError as exc:
        raise SeamlineError(f"cannot write {args.output}: {exc.strerror}") from None
    print(
        f"exported customer {profile.id} ({len(data['messages'])} messages, {len(data['identities'])} "
        f"identities) to {args.output}"
    )
    return 0


async def _erase(args, settings: Settings) -> int:
    async with _stores(settings) as stores:
        profile = await _profile(stores, args.who)
        if profile.merged_into:
            raise SeamlineError(
                f"customer {profile.id} was linked into {profile.merged_into}, which holds its "
                f"identities and messages now: erase that one, or undo the link first"
            )
        counts = await stores.customers.counts(profile.id)
        if not args.yes:
            print(
                f"seamline: not erased. Erasing customer {profile.id} would delete "
                f"{_n(counts['messages'], 'message')}, {_n(counts['identities'], 'identity', 'identities')}, "
                f"the profile and any link codes, and keep "
                f"{_n(counts['conversations'], 'conversation')} and {_n(counts['events'], 'event')} without "
                f"personal data. Run again with --yes to erase.",
                file=sys.stderr,
            )
            return 2
        by = args.by or _user()
        erased = await stores.customers.erase(profile.id, by=by)
        # The session may hold slots (an order number, a phone): it goes too, under the customer's lock.
        async with stores.sessions.lock(profile.id):
            await stores.sessions.delete(profile.id)
    print(
        f"erased customer {profile.id} (by {by}): deleted {_n(erased['messages'], 'message')}, "
        f"{_n(erased['identities'], 'identity', 'identities')} and the profile; kept anonymously: "
        f"{_n(erased['conversations'], 'conversation')} (state and times), "
        f"{_n(counts['events'] + 1, 'event')} (kind and time), the customer id"
    )
    _note_in_process(settings)
    return 0


_COMMANDS = {"show": _show, "links": _links, "unlink": _unlink, "export": _export, "erase": _erase}
