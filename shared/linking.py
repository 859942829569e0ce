"""Linking one customer's identities across channels, only on proof, and undoing it.

Three proofs: a 6-digit code asked for on one channel and typed on another; a deep link
(``t.me/<bot>?start=<token>``, ``vk.me/club<id>?ref=<token>``) opened from the widget; a site's
signed identity for its logged-in user. Codes and tokens are single use, expire after 10
minutes, and are stored only as a keyed hash (HMAC with the secret key), so neither the
database nor the logs hold them in clear. Wrong codes are counted per identity and lock it out
for a while after a few. Linking merges the newer customer into the one that gave the proof
(identities, profile, conversations, messages, session); every link is recorded and undoable.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from shared.handoff_states import MERGE_RANK
from shared.identity import LinkRecord
from shared.message import utcnow
from shared.session import Session, SessionStore

log = logging.getLogger(__name__)

CODE = re.compile(r"^\s*(\d{3})[\s-]?(\d{3})\s*$")
TOKEN_PREFIX = "ln-"
TOKEN = re.compile(r"^/start\s+(ln-[A-Za-z0-9_-]{20,60})\s*$")


@dataclass(frozen=True)
class LinkPolicy:
    ttl: timedelta = timedelta(minutes=10)
    max_failures: int = 5          # wrong codes in a row before the identity is locked out
    lockout: timedelta = timedelta(minutes=15)
    max_issued_per_hour: int = 5   # codes and tokens one identity may ask for


@dataclass(frozen=True)
class Outcome:
    """What a link attempt came to. ``status``: linked | already | invalid | expired | used | locked."""
    status: str
    survivor_id: str | None = None
    from_channel: str | None = None  # where the proof was asked for
    record: LinkRecord | None = None
    context: dict = field(default_factory=dict)

    @property
    def linked(self) -> bool:
        return self.status in ("linked", "already")


class RateLimited(Exception):
    pass


ISSUE_ATTEMPTS = 20


class Linker:
    def __init__(self, *, customers, sessions: SessionStore, secret_key: str, policy: LinkPolicy = LinkPolicy(),
                 lock_timeout: float = 10.0) -> None:
        self._customers = customers
        self._sessions = sessions
        self._key = hashlib.sha256(b"seamline-link:" + secret_key.encode()).digest()
        self.policy = policy
        self._lock_timeout = lock_timeout

    def _digest(self, kind: str, secret: str) -> str:
        return hmac.new(self._key, f"{kind}:{secret}".encode(), hashlib.sha256).hexdigest()

    # -- issuing ---------------------------------------------------------------------------

    async def _check_issue_rate(self, channel: str, sender: str) -> None:
        since = utcnow() - timedelta(hours=1)
        if await self._customers.proofs_issued_since(channel, sender, since) >= self.policy.max_issued_per_hour:
            raise RateLimited(f"{channel} {sender} asked for too many link codes in an hour")

    async def issue_code(self, customer_id: str, channel: str, sender: str) -> str:
        """A fresh 6-digit code for this identity's customer (raises RateLimited)."""
        await self._check_issue_rate(channel, sender)
        for _ in range(ISSUE_ATTEMPTS):  # another live code drawn the same: draw again
            code = f"{secrets.randbelow(10**6):06d}"
            if await self._customers.save_proof(kind="code", digest=self._digest("code", code),
                                                customer_id=customer_id, channel=channel, external_id=sender,
                                                ttl=self.policy.ttl):
                log.info("link code issued to %s %s", channel, sender)  # never the code itself
                return code
        raise RateLimited(f"no free link code after {ISSUE_ATTEMPTS} draws; too many live codes")

    async def issue_token(self, customer_id: str, channel: str, sender: str) -> str:
        """A one-time deep-link token (``ln-`` + 32 URL-safe characters; fits Telegram's start parameter)."""
        await self._check_issue_rate(channel, sender)
        token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        await self._customers.save_proof(kind="token", digest=self._digest("token", token), customer_id=customer_id,
                                         channel=channel, external_id=sender, ttl=self.policy.ttl)
        return token

    # -- redeeming -------------------------------------------------------------------------

    @staticmethod
    def code_in(text: str) -> str | None:
        match = CODE.match(text or "")
        return match.group(1) + match.group(2) if match else None

    @staticmethod
    def token_in(payload: str | None) -> str | None:
        match = TOKEN.match(payload or "")
        return match.group(1) if match else None

    async def redeem_code(self, code: str, customer_id: str, channel: str, sender: str, *,
                          strict: bool = True) -> Outcome | None:
        """Link by a code. Not ``strict`` (six digits that may as well be something else): a code that
        is not live is no attempt at all (None), not a failure."""
        failures, locked_until = await self._customers.link_lock(channel, sender)
        now = utcnow()
        if locked_until is not None and locked_until > now:
            if not strict:
                return None
            return Outcome("locked", context={"minutes": max(1, int((locked_until - now).total_seconds() // 60) + 1)})
        claimed = await self._customers.claim_proof("code", self._digest("code", code))
        if isinstance(claimed, str) and not strict:
            return None
        if isinstance(claimed, str):
            failures += 1
            lock = now + self.policy.lockout if failures >= self.policy.max_failures else None
            await self._customers.set_link_failures(channel, sender, 0 if lock else failures, lock)
            log.info("wrong link code from %s %s (%d in a row%s)", channel, sender, failures,
                     ", locked out" if lock else "")
            if lock:
                return Outcome("locked", context={"minutes": int(self.policy.lockout.total_seconds() // 60)})
            return Outcome(claimed if claimed in ("expired", "used") else "invalid")
        if failures:
            await self._customers.set_link_failures(channel, sender, 0, None)
        return await self._link(claimed, customer_id, method="code", by=f"{channel}:{sender}")

    async def redeem_token(self, token: str, customer_id: str, channel: str, sender: str) -> Outcome:
        claimed = await self._customers.claim_proof("token", self._digest("token", token))
        if isinstance(claimed, str):
            return Outcome(claimed if claimed in ("expired", "used") else "invalid")
        return await self._link(claimed, customer_id, method="deep_link", by=f"{channel}:{sender}")

    async def link_site_identity(self, customer_id: str, site_user: str, address: str) -> Outcome:
        """The site vouched (by signature) that this visitor is its user ``site_user``."""
        owner = await self._customers._chat.fresh_customer("site", site_user)
        if owner is None:
            await self._customers.add_identity(customer_id, "site", site_user, address)
            owner = await self._customers._chat.fresh_customer("site", site_user)
            if owner is None or owner.id == customer_id:
                return Outcome("linked", survivor_id=customer_id)
            # another browser of the same user claimed it in the same instant: join that customer
        if owner.id == customer_id:
            return Outcome("already", survivor_id=customer_id)
        return await self._link((owner.id, "site", site_user), customer_id, method="site_identity",
                                by=f"site:{site_user}")

    async def _link(self, claimed: tuple[str, str, str], customer_id: str, *, method: str, by: str) -> Outcome:
        issuer_id, issuer_channel, _ = claimed
        profile = await self._customers.profile(issuer_id)
        while profile is not None and profile.merged_into:  # the issuer was itself linked since
            issuer_id = profile.merged_into
            profile = await self._customers.profile(issuer_id)
        if profile is None or profile.erased_at is not None:
            return Outcome("invalid")
        if issuer_id == customer_id:
            return Outcome("already", survivor_id=issuer_id, from_channel=issuer_channel)
        record, context = await self.merge(issuer_id, customer_id, method=method, by=by)
        return Outcome("linked", survivor_id=issuer_id, from_channel=issuer_channel, record=record, context=context)

    # -- merging ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _both(self, a: str, b: str):
        first, second = sorted((a, b))  # one order everywhere: two links cannot deadlock
        async with contextlib.AsyncExitStack() as stack:
            for key in (first, second):
                await asyncio.wait_for(stack.enter_async_context(self._sessions.lock(key)), self._lock_timeout)
            yield

    async def merge(self, survivor_id: str, merged_id: str, *, method: str, by: str) -> tuple[LinkRecord, dict]:
        """Merge ``merged_id`` into ``survivor_id`` holding both customers' session locks: database
        rows in one commit, then one session with the union of their state."""
        async with self._both(survivor_id, merged_id):
            keep, gone = await self._sessions.load(survivor_id), await self._sessions.load(merged_id)
            session = merge_sessions(keep, gone, survivor_id)
            record = await self._customers.merge(
                survivor_id, merged_id, method=method, by=by,
                keep_conversation=session.conversation_id if session else None,
                keep_state=session.handoff if session else None)
            if session is not None:
                await self._sessions.save(session)
            await self._sessions.delete(merged_id)
        log.info("customer %s linked into %s by %s (%s)", merged_id, survivor_id, method, record.id)
        return record, {"slots": dict(session.slots) if session else {}}

    async def unlink(self, link_id: str, *, by: str) -> LinkRecord:
        record = await self._customers.unlink(link_id, by=by)
        # Both sessions are rebuilt from the database on their next message.
        async with self._both(record.survivor_id, record.merged_id):
            await self._sessions.delete(record.merged_id)
            await self._sessions.delete(record.survivor_id)
        log.info("link %s undone by %s", link_id, by)
        return record


def merge_sessions(keep: Session | None, gone: Session | None, survivor_id: str) -> Session | None:
    """One session from two: the conversation a person holds (or is queued for) wins, else the
    survivor's; slots are the union (the survivor's win a clash); an open form carries over."""
    if keep is None and gone is None:
        return None
    if keep is None or gone is None:
        only = keep or gone
        only.customer_id = survivor_id
        return only
    lead = gone if MERGE_RANK.get(gone.handoff, 0) > MERGE_RANK.get(keep.handoff, 0) else keep
    merged = Session(customer_id=survivor_id, conversation_id=lead.conversation_id, language=gone.language,
                     slots={**gone.slots, **keep.slots}, active_form=gone.active_form or keep.active_form,
                     fallbacks=0, handoff=lead.handoff, last_channel=gone.last_channel,
                     attributes={**gone.attributes, **keep.attributes}, seen=(keep.seen + gone.seen)[-200:])
    return merged
