"""Linking one customer's identities across channels, only on proof, and undoing it.

Three proofs: a 6-digit code asked for on one channel for another (it is valid only there); a
deep link (``t.me/<bot>?start=<token>``, ``vk.me/club<id>?ref=<token>``) opened from the widget;
a site's signed identity for its logged-in user. Codes and tokens are single use, expire after
10 minutes, and are stored only as a keyed hash (HMAC with the secret key, over the channel they
are for and the secret), so neither the database nor the logs hold them in clear.

A code is short enough to guess, so guessing must not pay (docs/linking.md, the threat model):
every code typed is counted *before* it is checked, per identity, per client address and in
total (``Limiter`` budgets, shared through Redis when configured); and a code or token that
hits asks the customer who asked for it first ("Someone on Telegram wants to link to this chat:
yes / no"). Only on yes are the customers merged (the newer, redeeming one into the one that
gave the proof: identities, profile, conversations, messages, session); every link is recorded
and undoable.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import math
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from seamline.shared.handoff_states import MERGE_RANK
from seamline.shared.identity import CustomerStore, LinkRecord
from seamline.shared.limits import Limiter, take_all
from seamline.shared.message import utcnow
from seamline.shared.session import Session, SessionStore

log = logging.getLogger(__name__)

CODE = re.compile(r"^\s*(\d{3})[\s-]?(\d{3})\s*$")
TOKEN_PREFIX = "ln-"
TOKEN = re.compile(r"^/start\s+(ln-[A-Za-z0-9_-]{20,60})\s*$")
# The issuer's answer to "someone wants to link": a button's payload. The reference names one
# request ("c…" for a code, "t…" for a deep link) and is only valid from the identity it was sent to.
ANSWER = re.compile(r"^/link_(yes|no)\s+([ct][A-Za-z0-9_-]{20,40})\s*$")


@dataclass(frozen=True)
class LinkPolicy:
    ttl: timedelta = timedelta(minutes=10)  # a code's or token's life, and the time to confirm a hit
    max_failures: int = 5  # codes one identity may try in a row (a success starts again) ...
    lockout: timedelta = timedelta(minutes=15)  # ... within this window
    max_issued_per_hour: int = 5  # codes and tokens one identity may ask for
    guesses_per_address: int = 20  # codes typed per client address (the widget's) per guess_window
    guesses_total: int = 1000  # codes typed on every channel together per guess_window
    guess_window: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class Outcome:
    """What a link attempt came to. ``status``: linked | already | pending (the issuer was asked) |
    invalid | expired | used | locked; for the issuer's answer also declined | stale."""

    status: str
    survivor_id: str | None = None
    from_channel: str | None = None  # the other side's channel
    record: LinkRecord | None = None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def linked(self) -> bool:
        return self.status in ("linked", "already")


class RateLimited(Exception):
    pass


ISSUE_ATTEMPTS = 20


class Linker:
    def __init__(
        self,
        *,
        customers: CustomerStore,
        sessions: SessionStore,
        secret_key: str,
        limiter: Limiter,
        policy: LinkPolicy = LinkPolicy(),
        lock_timeout: float = 10.0,
    ) -> None:
        self._customers = customers
        self._sessions = sessions
        self._limiter = limiter
        self._key = hashlib.sha256(b"seamline-link:" + secret_key.encode()).digest()
        self.policy = policy
        self._lock_timeout = lock_timeout

    def _digest(self, kind: str, target: str, secret: str) -> str:
        """The proof's keyed hash: it binds the channel it may be used on, so a code typed anywhere
        else is simply unknown there (and counted as a wrong guess)."""
        return hmac.new(self._key, f"{kind}:{target}:{secret}".encode(), hashlib.sha256).hexdigest()

    # -- issuing ---------------------------------------------------------------------------

    async def _check_issue_rate(self, channel: str, sender: str) -> None:
        since = utcnow() - timedelta(hours=1)
        if await self._customers.proofs_issued_since(channel, sender, since) >= self.policy.max_issued_per_hour:
            raise RateLimited(f"{channel} {sender} asked for too many link codes in an hour")

    async def issue_code(self, customer_id: str, channel: str, sender: str, *, target: str) -> str:
        """A fresh 6-digit code for this identity's customer, to be typed on ``target`` (raises RateLimited)."""
        if target == channel:
            raise ValueError("a link code is for another channel than the one it is asked on")
        await self._check_issue_rate(channel, sender)
        for _ in range(ISSUE_ATTEMPTS):  # another live code drawn the same: draw again
            code = f"{secrets.randbelow(10**6):06d}"
            if await self._customers.save_proof(
                kind="code",
                digest=self._digest("code", target, code),
                customer_id=customer_id,
                channel=channel,
                external_id=sender,
                ttl=self.policy.ttl,
            ):
                log.info("link code for %s issued to %s %s", target, channel, sender)  # never the code itself
                return code
        raise RateLimited(f"no free link code after {ISSUE_ATTEMPTS} draws; too many live codes")

    async def issue_token(self, customer_id: str, channel: str, sender: str, *, target: str) -> str:
        """A one-time deep-link token for ``target`` (``ln-`` + 32 URL-safe characters; fits Telegram's
        start parameter)."""
        await self._check_issue_rate(channel, sender)
        token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        await self._customers.save_proof(
            kind="token",
            digest=self._digest("token", target, token),
            customer_id=customer_id,
            channel=channel,
            external_id=sender,
            ttl=self.policy.ttl,
        )
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

    @staticmethod
    def answer_in(payload: str | None) -> tuple[bool, str] | None:
        """``/link_yes <ref>`` → (True, ref); ``/link_no <ref>`` → (False, ref); else None."""
        match = ANSWER.match(payload or "")
        return (match.group(1) == "yes", match.group(2)) if match else None

    def _budgets(self, channel: str, sender: str, address: str | None) -> list[tuple[str, int, float]]:
        """The budgets of one guesser: its identity's, and its address's when the channel has one."""
        budgets = [(f"link:identity:{channel}:{sender}", self.policy.max_failures, self.policy.lockout.total_seconds())]
        if address:
            budgets.append(
                (f"link:address:{address}", self.policy.guesses_per_address, self.policy.guess_window.total_seconds())
            )
        return budgets

    async def _take(self, channel: str, sender: str, address: str | None) -> float:
        """Reserve one guess: 0.0, or the seconds until one is allowed. The total budget is taken
        only once the guesser's own budgets had room, so one guesser cannot spend everyone's."""
        wait = await take_all(self._limiter, self._budgets(channel, sender, address))
        if wait > 0:
            return wait
        return await self._limiter.take(
            "link:all", limit=self.policy.guesses_total, window=self.policy.guess_window.total_seconds()
        )

    async def redeem_code(
        self, code: str, customer_id: str, channel: str, sender: str, *, address: str | None = None, strict: bool = True
    ) -> Outcome | None:
        """Try a code typed on ``channel``. One unit of every budget (identity, ``address``, total) is
        taken before the code is looked at; with one spent, nothing is looked at ("locked").
        Not ``strict`` (six digits the bot asked for as an order number): counted all the same, but
        a code that is not live, or a spent budget, is no link attempt (None): the digits are the
        order number."""
        wait = await self._take(channel, sender, address)
        if wait > 0:
            # debug: under attack this is every frame; the wrong guesses that were checked are logged
            log.debug(
                "link code from %s %s (address %s) not checked: guessing budget spent", channel, sender, address or "-"
            )
            return None if not strict else Outcome("locked", context={"minutes": max(1, math.ceil(wait / 60))})
        claimed = await self._customers.claim_proof("code", self._digest("code", channel, code))
        if isinstance(claimed, str):
            if strict:
                log.info("wrong link code from %s %s (address %s)", channel, sender, address or "-")
            return None if not strict else Outcome(claimed if claimed in ("expired", "used") else "invalid")
        await self._limiter.clear(f"link:identity:{channel}:{sender}")  # failures "in a row" start again
        return await self._ask(claimed, customer_id, channel, sender, method="code")

    async def redeem_token(self, token: str, customer_id: str, channel: str, sender: str) -> Outcome:
        """A deep link opened on ``channel`` (too long to guess: not counted)."""
        claimed = await self._customers.claim_proof("token", self._digest("token", channel, token))
        if isinstance(claimed, str):
            return Outcome(claimed if claimed in ("expired", "used") else "invalid")
        return await self._ask(claimed, customer_id, channel, sender, method="deep_link")

    async def _current(self, customer_id: str) -> str | None:
        """Where a customer is now (following links made since), or None when it was erased."""
        profile = await self._customers.profile(customer_id)
        while profile is not None and profile.merged_into:
            profile = await self._customers.profile(profile.merged_into)
        return None if profile is None or profile.erased_at is not None else profile.id

    def _answer_digest(self, channel: str, sender: str, ref: str) -> str:
        return self._digest("confirm", f"{channel}:{sender}", ref)

    async def _ask(
        self, claimed: tuple[str, str, str], customer_id: str, channel: str, sender: str, *, method: str
    ) -> Outcome:
        """A live proof was typed: nothing is merged yet. A request is kept (as a proof only the issuing
        identity can answer) and the pipeline asks the issuer; ``context["ask"]`` says whom and ``ref``."""
        claimed_id, issuer_channel, issuer_sender = claimed
        issuer_id = await self._current(claimed_id)
        if issuer_id is None:
            return Outcome("invalid")
        if issuer_id == customer_id:
            return Outcome("already", survivor_id=issuer_id, from_channel=issuer_channel)
        ref = ("c" if method == "code" else "t") + secrets.token_urlsafe(18)
        await self._customers.save_proof(
            kind="confirm",
            digest=self._answer_digest(issuer_channel, issuer_sender, ref),
            customer_id=customer_id,
            channel=channel,
            external_id=sender,
            ttl=self.policy.ttl,
        )
        log.info(
            "link by %s from %s %s waits for %s %s to confirm", method, channel, sender, issuer_channel, issuer_sender
        )
        return Outcome(
            "pending",
            survivor_id=issuer_id,
            from_channel=issuer_channel,
            context={"ask": (issuer_id, issuer_channel, issuer_sender), "ref": ref},
        )

    async def answer(self, ref: str, yes: bool, customer_id: str, channel: str, sender: str) -> Outcome:
        """The issuer pressed yes or no. Only the identity that was asked can answer (the request's
        hash binds it), once, within ``ttl``. Yes merges the redeeming customer into this one."""
        claimed = await self._customers.claim_proof("confirm", self._answer_digest(channel, sender, ref))
        if isinstance(claimed, str):
            return Outcome("stale")
        redeemer_id, redeemer_channel, redeemer_sender = claimed
        context = {"redeemer": (redeemer_channel, redeemer_sender)}
        if not yes:
            log.info("%s %s declined a link from %s %s", channel, sender, redeemer_channel, redeemer_sender)
            return Outcome("declined", from_channel=redeemer_channel, context=context)
        current_id = await self._current(redeemer_id)
        if current_id is None:
            return Outcome("stale")
        redeemer_id = current_id
        if redeemer_id == customer_id:
            return Outcome("already", survivor_id=customer_id, from_channel=redeemer_channel, context=context)
        record, merged = await self.merge(
            customer_id,
            redeemer_id,
            method="code" if ref[0] == "c" else "deep_link",
            by=f"{redeemer_channel}:{redeemer_sender}, confirmed by {channel}:{sender}",
        )
        return Outcome(
            "linked",
            survivor_id=customer_id,
            from_channel=redeemer_channel,
            record=record,
            context={**merged, **context},
        )

    async def link_site_identity(self, customer_id: str, site_user: str, address: str) -> Outcome:
        """The site vouched (by signature) that this visitor is its user ``site_user``."""
        owner = await self._customers.fresh_customer("site", site_user)
        if owner is None:
            await self._customers.add_identity(customer_id, "site", site_user, address)
            owner = await self._customers.fresh_customer("site", site_user)
            if owner is None or owner.id == customer_id:
                return Outcome("linked", survivor_id=customer_id)
            # another browser of the same user claimed it in the same instant: join that customer
        if owner.id == customer_id:
            return Outcome("already", survivor_id=customer_id)
        return await self._link(
            (owner.id, "site", site_user), customer_id, method="site_identity", by=f"site:{site_user}"
        )

    async def _link(self, claimed: tuple[str, str, str], customer_id: str, *, method: str, by: str) -> Outcome:
        """Merge at once: for a site's signed identity, which the site vouched for."""
        claimed_id, issuer_channel, _ = claimed
        issuer_id = await self._current(claimed_id)  # the owner was itself linked since
        if issuer_id is None:
            return Outcome("invalid")
        if issuer_id == customer_id:
            return Outcome("already", survivor_id=issuer_id, from_channel=issuer_channel)
        record, context = await self.merge(issuer_id, customer_id, method=method, by=by)
        return Outcome("linked", survivor_id=issuer_id, from_channel=issuer_channel, record=record, context=context)

    # -- merging ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _both(self, a: str, b: str) -> AsyncIterator[None]:
        first, second = sorted((a, b))  # one order everywhere: two links cannot deadlock
        async with contextlib.AsyncExitStack() as stack:
            for key in (first, second):
                await asyncio.wait_for(stack.enter_async_context(self._sessions.lock(key)), self._lock_timeout)
            yield

    async def merge(
        self, survivor_id: str, merged_id: str, *, method: str, by: str
    ) -> tuple[LinkRecord, dict[str, Any]]:
        """Merge ``merged_id`` into ``survivor_id`` holding both customers' session locks: database
        rows in one commit, then one session with the union of their state."""
        async with self._both(survivor_id, merged_id):
            keep, gone = await self._sessions.load(survivor_id), await self._sessions.load(merged_id)
            session = merge_sessions(keep, gone, survivor_id)
            record = await self._customers.merge(
                survivor_id,
                merged_id,
                method=method,
                by=by,
                keep_conversation=session.conversation_id if session else None,
                keep_state=session.handoff if session else None,
            )
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
        only = keep if keep is not None else gone
        assert only is not None  # one of the two, by the test above
        only.customer_id = survivor_id
        return only
    lead = gone if MERGE_RANK.get(gone.handoff, 0) > MERGE_RANK.get(keep.handoff, 0) else keep
    merged = Session(
        customer_id=survivor_id,
        conversation_id=lead.conversation_id,
        language=gone.language,
        slots={**gone.slots, **keep.slots},
        active_form=gone.active_form or keep.active_form,
        fallbacks=0,
        handoff=lead.handoff,
        last_channel=gone.last_channel,
        attributes={**gone.attributes, **keep.attributes},
        seen=(keep.seen + gone.seen)[-200:],
    )
    return merged
