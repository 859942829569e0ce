"""Customers across channels on SQLAlchemy: profiles, link proofs, merging and undoing, export, erasure.

Shares the chat store's engine and group writer (every write goes through it), and drops the
chat store's cached identity → customer entries whenever identities change hands.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Executable

from seamline.shared.errors import StoreError
from seamline.shared.history import new_id
from seamline.shared.identity import Customer, CustomerStore, Identity, LinkRecord, Profile
from seamline.shared.message import utcnow
from seamline.shared.storage.database import reading
from seamline.shared.storage.models import (
    ConversationRow,
    CustomerRow,
    EventRow,
    IdentityRow,
    LinkCodeRow,
    LinkRow,
    MessageRow,
    ReminderRow,
)
from seamline.shared.storage.sql import SqlChatStore, aware

PROFILE_KEYS = ("name", "language")  # columns; everything else lives in ``attributes``


class SqlCustomerStore:
    def __init__(self, chat: SqlChatStore) -> None:
        self._chat = chat
        self.engine = chat.engine
        self._writer = chat.writer

    async def _all(self, query: Executable) -> list[Any]:
        try:
            async with reading(self.engine).connect() as conn:
                return list((await conn.execute(query)).all())
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read customers: {exc}") from exc

    # -- profile ---------------------------------------------------------------------------

    async def fresh_customer(self, channel: str, sender: str) -> Customer | None:
        """The customer behind an identity, read from the database (not the chat store's cache)."""
        return await self._chat.fresh_customer(channel, sender)

    async def profile(self, customer_id: str) -> Profile | None:
        rows = await self._all(select(CustomerRow).where(CustomerRow.id == customer_id))
        if not rows:
            return None
        row = rows[0]
        identities = await self._chat.identities(customer_id)
        return Profile(
            id=row.id,
            name=row.name,
            language=row.language,
            last_channel=row.last_channel,
            attributes=dict(row.attributes or {}),
            attribute_meta=dict(row.attribute_meta or {}),
            identities=tuple(identities),
            merged_into=row.merged_into,
            created_at=aware(row.created_at),
            last_seen_at=aware(row.last_seen_at),
            erased_at=aware(row.erased_at),
        )

    async def set_attributes(
        self, customer_id: str, values: dict[str, object], *, source: str, verified: bool = False
    ) -> None:
        """Set profile attributes (``name`` and ``language`` are columns, the rest free-form), remembering
        when, by whom and whether verified: a later merge keeps the most recent verified value."""
        profile = await self.profile(customer_id)
        if profile is None:
            raise StoreError(f"no customer {customer_id}")
        now = utcnow().isoformat()
        attributes, meta = dict(profile.attributes), dict(profile.attribute_meta)
        columns: dict[str, object] = {}
        for key, value in values.items():
            if key in PROFILE_KEYS:
                columns[key] = value
            else:
                attributes[key] = value
            meta[key] = {"at": now, "source": source, "verified": verified}
        await self._writer.write(
            update(CustomerRow)
            .where(CustomerRow.id == customer_id)
            .values(attributes=attributes, attribute_meta=meta, **columns),
            {},
        )

    async def reachable_identities(self, customer_id: str) -> list[Identity]:
        """Reachable identities, the most recently active first (by the last message from each)."""
        identities = [i for i in await self._chat.identities(customer_id) if i.reachable]
        rows = await self._all(
            select(MessageRow.channel, MessageRow.identity, func.max(MessageRow.created_at).label("last"))
            .where(MessageRow.customer_id == customer_id, MessageRow.direction == "in")
            .group_by(MessageRow.channel, MessageRow.identity)
        )
        last = {(r.channel, r.identity): aware(r.last) for r in rows}
        floor = datetime.min.replace(tzinfo=utcnow().tzinfo)
        return sorted(identities, key=lambda i: last.get((i.channel, i.external_id)) or floor, reverse=True)

    # -- one-time proofs -------------------------------------------------------------------

    async def save_proof(
        self, *, kind: str, digest: str, customer_id: str, channel: str, external_id: str, ttl: timedelta
    ) -> bool:
        """Keep a new proof. False when a live proof has the same digest (a 6-digit code drawn twice
        within its 10 minutes): the caller draws another. A dead one (used or expired) with the same
        digest is replaced: there are only a million codes, and each is drawn again sooner or later."""
        now = utcnow()
        rows = await self._all(select(LinkCodeRow.used_at, LinkCodeRow.expires_at).where(LinkCodeRow.digest == digest))
        if rows and rows[0].used_at is None and aware(rows[0].expires_at) > now:
            return False
        values = {
            "kind": kind,
            "customer_id": customer_id,
            "channel": channel,
            "external_id": external_id,
            "created_at": now,
            "expires_at": now + ttl,
            "used_at": None,
        }
        if rows:  # the dead proof's row becomes the new one
            await self._writer.write(update(LinkCodeRow).where(LinkCodeRow.digest == digest).values(**values), {})
        else:
            await self._writer.write(insert(LinkCodeRow), {"digest": digest, **values})
        return True

    async def purge_proofs(self, older_than: timedelta) -> int:
        """Forget proofs that died (expired) more than ``older_than`` ago; returns how many."""
        dead = LinkCodeRow.expires_at < utcnow() - older_than
        count = (await self._all(select(func.count()).select_from(LinkCodeRow).where(dead)))[0][0]
        if count:
            await self._writer.write(delete(LinkCodeRow).where(dead), {})
        return int(count)

    async def proofs_issued_since(self, channel: str, external_id: str, since: datetime) -> int:
        """Codes and tokens this identity asked for (not the requests to confirm a link it made)."""
        rows = await self._all(
            select(func.count())
            .select_from(LinkCodeRow)
            .where(
                LinkCodeRow.channel == channel,
                LinkCodeRow.external_id == external_id,
                LinkCodeRow.created_at >= since,
                LinkCodeRow.kind.in_(("code", "token")),
            )
        )
        return int(rows[0][0])

    async def claim_proof(self, kind: str, digest: str) -> tuple[str, str, str] | str:
        """Use a proof once: (customer id, channel, external id) of whoever it was kept for (who asked
        for a code or token; who typed a code that waits for confirmation), or why not:
        "unknown", "expired" or "used". Two claims of the same proof: exactly one wins."""
        rows = await self._all(select(LinkCodeRow).where(LinkCodeRow.digest == digest, LinkCodeRow.kind == kind))
        if not rows:
            return "unknown"
        row, now = rows[0], utcnow()
        if row.used_at is not None:
            return "used"
        if aware(row.expires_at) <= now:
            return "expired"
        await self._writer.write(
            update(LinkCodeRow).where(LinkCodeRow.digest == digest, LinkCodeRow.used_at.is_(None)).values(used_at=now),
            {},
        )
        again = await self._all(select(LinkCodeRow.used_at).where(LinkCodeRow.digest == digest))
        if not again or aware(again[0].used_at) != now:
            return "used"  # another claim won the race
        return row.customer_id, row.channel, row.external_id

    async def add_identity(self, customer_id: str, channel: str, external_id: str, address: str) -> None:
        await self._chat.add_identity(customer_id, channel, external_id, address)

    # -- merging and undoing ----------------------------------------------------------------

    async def merge(
        self,
        survivor_id: str,
        merged_id: str,
        *,
        method: str,
        by: str,
        keep_conversation: str | None,
        keep_state: str | None = None,
    ) -> LinkRecord:
        """Move everything of ``merged_id`` to ``survivor_id`` in one commit and record how to undo it.
        ``keep_conversation`` (default: the survivor's latest open one) continues, in ``keep_state``
        (the handoff state the merged session settled on); every other open one is closed as merged."""
        survivor, merged = await self.profile(survivor_id), await self.profile(merged_id)
        if survivor is None or merged is None:
            raise StoreError("both customers must exist to be linked")
        rows = await self._all(
            select(ConversationRow.id, ConversationRow.customer_id, ConversationRow.state)
            .where(ConversationRow.customer_id.in_([survivor_id, merged_id]))
            .order_by(ConversationRow.started_at)
        )
        conversations = [r.id for r in rows if r.customer_id == merged_id]
        open_ones = {r.id: r.state for r in rows if r.state not in ("resolved", "merged")}
        if keep_conversation is None:
            keep_conversation = next(
                (r.id for r in reversed(rows) if r.customer_id == survivor_id and r.id in open_ones), None
            )
        closed = {cid: state for cid, state in open_ones.items() if cid != keep_conversation}
        states = {keep_conversation: open_ones.get(keep_conversation)}
        attributes, meta, columns, conflicts = _merge_profiles(survivor, merged)
        now, link_id = utcnow(), new_id()
        data = {
            "identities": [[i.channel, i.external_id] for i in merged.identities],
            "conversations": conversations,
            "closed": closed,
            "kept_conversation": keep_conversation,
            "kept_state": states.get(keep_conversation),
            "survivor_before": _snapshot(survivor),
            "merged_before": _snapshot(merged),
            "conflicts": conflicts,
            "by": by,
        }
        writes: list[tuple[Executable, dict[str, Any]]] = [
            (update(IdentityRow).where(IdentityRow.customer_id == merged_id).values(customer_id=survivor_id), {}),
            (
                update(ConversationRow).where(ConversationRow.customer_id == merged_id).values(customer_id=survivor_id),
                {},
            ),
            (update(MessageRow).where(MessageRow.customer_id == merged_id).values(customer_id=survivor_id), {}),
            (update(LinkCodeRow).where(LinkCodeRow.customer_id == merged_id).values(customer_id=survivor_id), {}),
            (
                update(CustomerRow)
                .where(CustomerRow.id == survivor_id)
                .values(attributes=attributes, attribute_meta=meta, **columns),
                {},
            ),
            (update(CustomerRow).where(CustomerRow.id == merged_id).values(merged_into=survivor_id), {}),
            (
                insert(LinkRow),
                {
                    "id": link_id,
                    "survivor_id": survivor_id,
                    "merged_id": merged_id,
                    "method": method,
                    "data": data,
                    "created_at": now,
                    "undone_at": None,
                    "undone_by": None,
                },
            ),
            (
                insert(EventRow),
                {
                    "kind": "customers_linked",
                    "customer_id": survivor_id,
                    "conversation_id": keep_conversation,
                    "data": {
                        "link": link_id,
                        "merged": merged_id,
                        "method": method,
                        "by": by,
                        "conflicts": [c["key"] for c in conflicts],
                    },
                    "created_at": now,
                },
            ),
        ]
        if closed:
            writes.append(
                (
                    update(ConversationRow)
                    .where(ConversationRow.id.in_(list(closed)))
                    .values(state="merged", closed_at=now, updated_at=now),
                    {},
                )
            )
        if keep_conversation and keep_state:
            writes.append(
                (
                    update(ConversationRow)
                    .where(ConversationRow.id == keep_conversation)
                    .values(state=keep_state, updated_at=now),
                    {},
                )
            )
        await self._writer.write_all(writes)
        self._chat.forget_identities(merged.identities)
        return LinkRecord(link_id, survivor_id, merged_id, method, now, conflicts=tuple(conflicts))

    async def links(self, customer_id: str) -> list[LinkRecord]:
        rows = await self._all(
            select(LinkRow)
            .where(or_(LinkRow.survivor_id == customer_id, LinkRow.merged_id == customer_id))
            .order_by(LinkRow.created_at)
        )
        return [
            LinkRecord(
                r.id,
                r.survivor_id,
                r.merged_id,
                r.method,
                aware(r.created_at),
                undone_at=aware(r.undone_at),
                conflicts=tuple((r.data or {}).get("conflicts", ())),
            )
            for r in rows
        ]

    async def unlink(self, link_id: str, *, by: str) -> LinkRecord:
        """Undo a link: the merged customer gets back its identities, conversations, the messages of
        its identities (also those written since) and its profile; the survivor its previous values."""
        rows = await self._all(select(LinkRow).where(LinkRow.id == link_id))
        if not rows:
            raise LookupError(f"no link {link_id}")
        link = rows[0]
        if link.undone_at is not None:
            raise ValueError(f"link {link_id} was already undone")
        data, survivor_id, merged_id = link.data, link.survivor_id, link.merged_id
        later = await self._all(
            select(LinkRow.id).where(
                LinkRow.survivor_id == merged_id, LinkRow.undone_at.is_(None), LinkRow.created_at > link.created_at
            )
        )
        if later:
            raise ValueError(f"undo the later link {later[0].id} into the merged customer first")
        identities = [tuple(pair) for pair in data["identities"]]
        conversations = list(data["conversations"])
        # where the merged customer's messages written since the link go back to: its own conversation
        candidates = [*data.get("closed", {}), data.get("kept_conversation"), *reversed(conversations)]
        home = next((c for c in candidates if c in conversations), None)
        of_merged = (
            or_(*[and_(MessageRow.channel == c, MessageRow.identity == e) for c, e in identities])
            if identities
            else None
        )
        now = utcnow()
        before, survivor = data["merged_before"], await self.profile(survivor_id)
        writes: list[tuple[Executable, dict[str, Any]] | None] = [
            (
                update(IdentityRow)
                .where(
                    IdentityRow.customer_id == survivor_id,
                    or_(*[and_(IdentityRow.channel == c, IdentityRow.external_id == e) for c, e in identities]),
                )
                .values(customer_id=merged_id),
                {},
            )
            if identities
            else None,
            (update(ConversationRow).where(ConversationRow.id.in_(conversations)).values(customer_id=merged_id), {}),
            (update(MessageRow).where(MessageRow.conversation_id.in_(conversations)).values(customer_id=merged_id), {}),
            (
                update(MessageRow)
                .where(
                    MessageRow.customer_id == survivor_id, of_merged, MessageRow.conversation_id.not_in(conversations)
                )
                .values(customer_id=merged_id, conversation_id=home),
                {},
            )
            if of_merged is not None and home
            else None,
            (
                update(CustomerRow)
                .where(CustomerRow.id == merged_id)
                .values(
                    merged_into=None,
                    name=before["name"],
                    language=before["language"],
                    attributes=before["attributes"],
                    attribute_meta=before["attribute_meta"],
                ),
                {},
            ),
            (
                update(CustomerRow)
                .where(CustomerRow.id == survivor_id)
                .values(**_restore(survivor, data["survivor_before"], data["conflicts"], before)),
                {},
            ),
            (update(LinkRow).where(LinkRow.id == link_id).values(undone_at=now, undone_by=by), {}),
            (
                insert(EventRow),
                {
                    "kind": "customers_unlinked",
                    "customer_id": survivor_id,
                    "conversation_id": None,
                    "data": {"link": link_id, "merged": merged_id, "by": by},
                    "created_at": now,
                },
            ),
        ]
        for conversation, state in (data.get("closed") or {}).items():
            writes.append(
                (
                    update(ConversationRow)
                    .where(ConversationRow.id == conversation)
                    .values(state=state, closed_at=None, updated_at=now),
                    {},
                )
            )
        kept, kept_state = data.get("kept_conversation"), data.get("kept_state")
        if kept in conversations and kept_state:
            # the merged customer's conversation went on as the survivor's; it goes back as it was
            writes.append((update(ConversationRow).where(ConversationRow.id == kept).values(state=kept_state), {}))
        await self._writer.write_all([w for w in writes if w is not None])
        self._chat.forget_identities([Identity(c, e, "") for c, e in identities])
        return LinkRecord(link.id, survivor_id, merged_id, link.method, aware(link.created_at), undone_at=now)

    # -- privacy ----------------------------------------------------------------------------

    async def counts(self, customer_id: str) -> dict[str, int]:
        """What is kept about the customer and every customer merged into it (what ``erase`` acts
        on): messages, identities, conversations and events."""
        ids = [customer_id] + [
            r.id for r in await self._all(select(CustomerRow.id).where(CustomerRow.merged_into == customer_id))
        ]
        counts = {}
        for name, row in (
            ("messages", MessageRow),
            ("identities", IdentityRow),
            ("conversations", ConversationRow),
            ("events", EventRow),
        ):
            found = await self._all(select(func.count()).select_from(row).where(row.customer_id.in_(ids)))
            counts[name] = int(found[0][0])
        return counts

    async def export(self, customer_id: str) -> dict[str, Any]:
        """Everything Seamline keeps about one customer, as plain JSON-able data."""
        profile = await self.profile(customer_id)
        if profile is None:
            raise LookupError(f"no customer {customer_id}")
        conversations = await self._all(
            select(ConversationRow)
            .where(ConversationRow.customer_id == customer_id)
            .order_by(ConversationRow.started_at)
        )
        messages = await self._chat.history(customer_id, limit=1_000_000)
        events = await self._chat.events(customer_id)
        return {
            "customer": {
                "id": profile.id,
                "name": profile.name,
                "language": profile.language,
                "attributes": profile.attributes,
                "last_channel": profile.last_channel,
                "created_at": _iso(profile.created_at),
                "last_seen_at": _iso(profile.last_seen_at),
            },
            "identities": [
                {"channel": i.channel, "external_id": i.external_id, "reachable": i.reachable}
                for i in profile.identities
            ],
            "conversations": [
                {
                    "id": c.id,
                    "state": c.state,
                    "queue": c.queue,
                    "started_at": _iso(aware(c.started_at)),
                    "closed_at": _iso(aware(c.closed_at)),
                }
                for c in conversations
            ],
            "messages": [
                {
                    "id": m.id,
                    "conversation_id": m.conversation_id,
                    "channel": m.channel,
                    "direction": m.direction,
                    "role": m.role,
                    "text": m.text,
                    "payload": m.payload,
                    "attachments": m.attachments,
                    "intent": m.intent,
                    "created_at": _iso(m.created_at),
                }
                for m in messages
            ],
            "events": [
                {
                    "kind": e["kind"],
                    "conversation_id": e["conversation_id"],
                    "data": e["data"],
                    "created_at": _iso(e["created_at"]),
                }
                for e in events
            ],
            "links": [
                {
                    "id": link.id,
                    "survivor_id": link.survivor_id,
                    "merged_id": link.merged_id,
                    "method": link.method,
                    "created_at": _iso(link.created_at),
                    "undone_at": _iso(link.undone_at),
                }
                for link in await self.links(customer_id)
            ],
        }

    async def erase(self, customer_id: str, *, by: str) -> dict[str, Any]:
        """Remove the customer's messages, identities, profile and link proofs (and of every customer
        merged into it). Kept, without anything personal: the customer row as a tombstone, the
        conversations' states and times, and event kinds and times, so counts stay right."""
        profile = await self.profile(customer_id)
        if profile is None:
            raise LookupError(f"no customer {customer_id}")
        ids = [customer_id] + [
            r.id for r in await self._all(select(CustomerRow.id).where(CustomerRow.merged_into == customer_id))
        ]
        counted = await self._all(select(func.count()).select_from(MessageRow).where(MessageRow.customer_id.in_(ids)))
        conversations = await self._all(
            select(func.count()).select_from(ConversationRow).where(ConversationRow.customer_id.in_(ids))
        )
        identities = [i for cid in ids for i in await self._chat.identities(cid)]
        now = utcnow()
        counts = {
            "messages": int(counted[0][0]),
            "conversations": int(conversations[0][0]),
            "identities": len(identities),
        }
        await self._writer.write_all(
            [
                (delete(MessageRow).where(MessageRow.customer_id.in_(ids)), {}),
                (delete(IdentityRow).where(IdentityRow.customer_id.in_(ids)), {}),
                (delete(LinkCodeRow).where(LinkCodeRow.customer_id.in_(ids)), {}),
                (delete(ReminderRow).where(ReminderRow.customer_id.in_(ids)), {}),  # their entities may be personal
                (
                    update(LinkRow)
                    .where(or_(LinkRow.survivor_id.in_(ids), LinkRow.merged_id.in_(ids)))
                    .values(data={}),
                    {},
                ),
                (
                    update(EventRow)
                    .where(EventRow.customer_id.in_(ids), EventRow.kind != "customer_erased")
                    .values(data={}),
                    {},
                ),
                (update(ConversationRow).where(ConversationRow.customer_id.in_(ids)).values(escalation=None), {}),
                (
                    update(ConversationRow)
                    .where(
                        ConversationRow.customer_id.in_(ids),
                        ConversationRow.state.not_in(["resolved", "abandoned", "merged"]),
                    )
                    .values(state="resolved", closed_at=now, agent_id=None),
                    {},
                ),
                (
                    update(CustomerRow)
                    .where(CustomerRow.id.in_(ids))
                    .values(name=None, attributes={}, attribute_meta={}, erased_at=now),
                    {},
                ),
                (
                    insert(EventRow),
                    {
                        "kind": "customer_erased",
                        "customer_id": customer_id,
                        "conversation_id": None,
                        "data": {**counts, "by": by},
                        "created_at": now,
                    },
                ),
            ]
        )
        self._chat.forget_identities(identities)
        return counts


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _snapshot(profile: Profile) -> dict[str, Any]:
    return {
        "name": profile.name,
        "language": profile.language,
        "attributes": profile.attributes,
        "attribute_meta": profile.attribute_meta,
    }


def _merge_profiles(
    survivor: Profile, merged: Profile
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """The survivor's profile after taking in the merged one's. A key both have with different values
    keeps the most recent verified value (then the most recent); every such conflict is recorded."""
    values = {**{k: getattr(merged, k) for k in PROFILE_KEYS}, **merged.attributes}
    mine = {**{k: getattr(survivor, k) for k in PROFILE_KEYS}, **survivor.attributes}
    attributes, meta = dict(survivor.attributes), dict(survivor.attribute_meta)
    columns: dict[str, object] = {}
    conflicts: list[dict[str, Any]] = []
    for key, theirs in values.items():
        if theirs in (None, ""):
            continue
        ours = mine.get(key)
        take = ours in (None, "")
        if not take and ours != theirs:

            def rank(m: dict[str, Any] | None) -> tuple[bool, str]:
                return bool((m or {}).get("verified")), str((m or {}).get("at") or "")

            take = rank(merged.attribute_meta.get(key)) > rank(survivor.attribute_meta.get(key))
            conflicts.append({"key": key, "kept": theirs if take else ours, "dropped": ours if take else theirs})
        if take:
            (columns if key in PROFILE_KEYS else attributes)[key] = theirs
            if key in merged.attribute_meta:
                meta[key] = merged.attribute_meta[key]
    return attributes, meta, columns, conflicts


def _restore(
    survivor: Profile | None, before: dict[str, Any], conflicts: list[dict[str, Any]], merged_before: dict[str, Any]
) -> dict[str, Any]:
    """The survivor's profile without what the merge brought in (values changed since are kept)."""
    if survivor is None:
        return {}
    brought = {**{k: merged_before.get(k) for k in PROFILE_KEYS}, **merged_before["attributes"]}
    attributes, meta = dict(survivor.attributes), dict(survivor.attribute_meta)
    columns: dict[str, object] = {}
    for key, value in brought.items():
        current = getattr(survivor, key) if key in PROFILE_KEYS else attributes.get(key)
        if value in (None, "") or current != value:
            continue  # not from the merge, or changed since: leave it
        old = before.get(key) if key in PROFILE_KEYS else before["attributes"].get(key)
        if key in PROFILE_KEYS:
            columns[key] = old
        elif old is None:
            attributes.pop(key, None)
        else:
            attributes[key] = old
        if key in before["attribute_meta"]:
            meta[key] = before["attribute_meta"][key]
        else:
            meta.pop(key, None)
    return {"attributes": attributes, "attribute_meta": meta, **columns}


def _serves(store: SqlCustomerStore) -> CustomerStore:
    return store  # for mypy: the SQL store is every protocol it is used through
