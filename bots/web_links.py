"""What joins a widget visitor to the rest of their customer: the site's signed identity (``external_id``
+ ``signature`` in ``hello``) and deep links into the other channels ("continue in…", a ``link``
frame). A part of WebChannel (bots/web.py), apart to keep each module readable.

The channels offered are whichever running channel plug-ins make deep links, with the labels and
icons they declare: the widget learns them from the server, never from a list of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from aiohttp import web

from seamline.bots.web_frames import MAX_ID, FrameError, page
from seamline.shared.errors import ChannelError, SeamlineError
from seamline.shared.linking import RateLimited

log = logging.getLogger("seamline.bots.web")  # the widget logs under one name

MAX_EXTERNAL_ID = 256  # characters of a site's user id


class Linking:
    """Mixed into WebChannel, whose constructor sets what these use."""

    name: ClassVar[str]
    _store: Any
    _linker: Any
    _signer: Any
    _identity_key: bytes
    _channels: Mapping[str, Any]

    _sockets: dict[str, set[web.WebSocketResponse]]
    _history_limit: int
    _history_bytes: int

    async def _broadcast(self, visitor: str, frame: dict[str, Any]) -> int:
        raise NotImplementedError  # WebChannel's: every worker's open tabs of the visitor

    async def _refresh(self, customer_id: str) -> None:
        """Send a customer's history to every open widget of theirs (a ``history`` frame): after a link
        it holds what was said on the other channels, or in the other browser."""
        # Any worker may hold the widget (bots/web_relay.py): every web identity of theirs is asked.
        visitors = [i.external_id for i in await self._store.identities(customer_id) if i.channel == "web"]
        if not visitors:
            return
        history = page(await self._store.history(customer_id, self._history_limit), self._history_bytes)
        for visitor in visitors:
            await self._broadcast(visitor, {"type": "history", **history})

    @property
    def channels(self) -> list[str]:
        """The channels a visitor may continue in (those with a deep link), in the registry's order."""
        if self._linker is None or self._store is None:
            return []
        return [name for name, adapter in self._channels.items() if name != self.name and _links(adapter)]

    def continue_in(self, language: str | None) -> list[dict[str, str]]:
        """The "continue in…" buttons: each channel's label in the visitor's language and its icon,
        as the channel plug-ins declare them."""
        shown = []
        for name in self.channels:
            adapter = self._channels[name]
            shown.append({"channel": name, "label": label(adapter.labels, language), "icon": adapter.icon})
        return shown

    # -- the site's signed identity ----------------------------------------------------------------

    def _claim(self, frame: dict, visitor: str) -> str | None:
        """The site user the hello claims, if the site's signature proves it; else None (anonymous).
        signature = hex(HMAC-SHA256(identity secret, external_id)), see docs/web-chat-protocol.md."""
        site_user, signature = frame.get("external_id"), frame.get("signature")
        if site_user is None and signature is None:
            return None
        if not isinstance(site_user, str) or not 0 < len(site_user) <= MAX_EXTERNAL_ID:
            reason = f"external_id must be a string of 1-{MAX_EXTERNAL_ID} characters"
        elif not self._identity_key or self._linker is None or self._store is None:
            reason = "no SEAMLINE_WEB_IDENTITY_SECRET is configured"
        elif not isinstance(signature, str) or not hmac.compare_digest(
            signature.strip().lower().encode("utf-8", "surrogatepass"),
            hmac.new(self._identity_key, site_user.encode("utf-8", "surrogatepass"), hashlib.sha256)
            .hexdigest()
            .encode(),
        ):
            reason = "missing or wrong signature"
        else:
            return site_user
        # Never the signature itself in the log: with the id it would be a working claim.
        log.info(
            "web visitor %s: site identity claim %.64r ignored (%s); the chat goes on anonymous",
            visitor,
            site_user,
            reason,
        )
        return None

    async def _identify(self, visitor: str, token: str, site_user: str, language: str | None) -> tuple[str, str, bool]:
        """Link the visitor's customer to the site's user (merging with that user's earlier customer, on
        any browser). A browser whose conversation belongs to another site user (a shared computer, a
        different login) starts a new conversation instead: one site user never sees another's."""
        customer = await self._store.find_customer("web", visitor)
        if customer is not None:
            others = [
                i
                for i in await self._store.identities(customer.id)
                if i.channel == "site" and i.external_id != site_user
            ]
            if others:
                log.info(
                    "web visitor %s belongs to another site user; a new conversation is started for %.64r",
                    visitor,
                    site_user,
                )
                visitor, token = self._signer.new()
                customer = None
        try:
            if customer is None:
                customer = await self._store.resolve_customer("web", visitor, visitor, language=language)
            outcome = await self._linker.link_site_identity(customer.id, site_user, address=visitor)
        except (SeamlineError, TimeoutError) as exc:  # storage down, a merge lock not free in time
            log.warning(
                "web visitor %s: site identity %.64r not linked (%s); the chat goes on anonymous",
                visitor,
                site_user,
                exc,
            )
            return visitor, token, False
        if outcome.record is not None:  # two customers became one: the other tabs and browsers see it all now
            await self._refresh(outcome.survivor_id)
        return visitor, token, outcome.linked

    # -- deep links into the messengers ------------------------------------------------------------

    async def _link(self, ws: web.WebSocketResponse, visitor: str, frame: dict, language: str | None) -> None:
        """A ``link`` frame: a one-time link that opens a messenger and links it to this visitor's customer."""
        frame_id = frame.get("id")
        if frame_id is not None and (not isinstance(frame_id, str) or not 0 < len(frame_id) <= MAX_ID):
            raise FrameError("bad_frame", f"'id' must be a string of 1-{MAX_ID} characters")
        channel = frame.get("channel")
        if not isinstance(channel, str):
            raise FrameError(
                "bad_frame", f"'channel' must be a string: {' or '.join(self.channels) or 'a channel'}", frame_id
            )
        build = self._channels[channel].deep_link if channel in self.channels else None
        if build is None:
            raise FrameError("link_unavailable", f"continuing in {channel[:32]!r} is not available here", frame_id)
        customer = await self._store.find_customer("web", visitor) or await self._store.resolve_customer(
            "web", visitor, visitor, language=language
        )
        try:
            token = await self._linker.issue_token(customer.id, "web", visitor, target=channel)
        except RateLimited:
            raise FrameError(
                "rate_limited",
                "too many links were asked for in an hour; use the last one, or try again later",
                frame_id,
            ) from None
        try:
            url = build(token)
            if not url:
                raise ChannelError(f"{channel} gave no link")
        except ChannelError as exc:
            log.warning("web visitor %s: no %s link: %s", visitor, channel, exc)
            raise FrameError(
                "link_unavailable", f"continuing in {channel} is not available right now", frame_id
            ) from None
        answer = {
            "type": "link",
            "channel": channel,
            "url": url,
            "expires_in": int(self._linker.policy.ttl.total_seconds()),
        }
        if frame_id:
            answer["id"] = frame_id
        await ws.send_json(answer)


def _links(adapter: Any) -> bool:
    """Whether a channel offers deep links: its class overrides ``deep_link`` to return a URL. A
    channel that returns None for every token (REST, the widget) is not listed."""
    try:
        return bool(adapter.deep_link("probe"))
    except ChannelError:
        return True  # it has links, just not yet (Telegram before getMe): asked again per frame
    except Exception:  # noqa: BLE001 - a plug-in's bug must not break the welcome
        return False


def label(labels: Mapping[str, str], language: str | None) -> str:
    return labels.get(language or "en") or labels.get("en") or next(iter(labels.values()), "")
