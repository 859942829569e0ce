"""Customers and their channel identities.

One customer may write from several channels; each (channel, sender) pair is an identity
that points at exactly one customer. Linking identities across channels is done only on
proof (a one-time code, a deep link, a site's signed identity; see docs/linking.md); until
then every new identity is a new customer, whatever phone or e-mail two customers share.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol


@dataclass(frozen=True)
class Identity:
    channel: str
    external_id: str
    address: str
    reachable: bool = True


@dataclass(frozen=True)
class Customer:
    id: str
    name: str | None = None
    language: str | None = None
    last_channel: str | None = None
    created_at: datetime | None = None
    identities: tuple[Identity, ...] = field(default=())
    attributes: dict[str, Any] = field(default_factory=dict[str, Any])
    new: bool = False  # created by this very resolution: nothing to look up about them yet


@dataclass(frozen=True)
class Profile:
    """Everything known about a customer: the profile an agent sees and an export contains."""

    id: str
    name: str | None = None
    language: str | None = None
    last_channel: str | None = None
    attributes: dict[str, Any] = field(
        default_factory=dict[str, Any]
    )  # phone, email, and custom ones set by actions or agents
    attribute_meta: dict[str, Any] = field(default_factory=dict[str, Any])  # key -> {"at", "source", "verified"}
    identities: tuple[Identity, ...] = ()
    merged_into: str | None = None
    created_at: datetime | None = None
    last_seen_at: datetime | None = None
    erased_at: datetime | None = None


@dataclass(frozen=True)
class LinkRecord:
    """Two customers linked into one (``merged_id`` into ``survivor_id``), undoable."""

    id: str
    survivor_id: str
    merged_id: str
    method: str  # code | deep_link | site_identity | admin
    created_at: datetime
    undone_at: datetime | None = None
    conflicts: tuple[dict[str, Any], ...] = ()


class IdentityStore(Protocol):
    """Who is behind a (channel, sender): found or made once, cached, told when identities move."""

    async def resolve_customer(
        self, channel: str, sender: str, address: str, name: str | None = None, language: str | None = None
    ) -> Customer: ...

    async def find_customer(self, channel: str, sender: str) -> Customer | None: ...

    async def fresh_customer(self, channel: str, sender: str) -> Customer | None: ...

    def forget_identities(self, identities: Iterable[Identity]) -> None: ...

    async def identities(self, customer_id: str) -> list[Identity]: ...

    async def add_identity(self, customer_id: str, channel: str, external_id: str, address: str) -> None: ...

    async def touch_customer(self, customer_id: str, channel: str) -> None: ...

    async def set_reachable(self, channel: str, sender: str, reachable: bool) -> None: ...


class ProfileStore(Protocol):
    """What agents see of a customer, and what an export or an erasure covers."""

    async def profile(self, customer_id: str) -> Profile | None: ...

    async def fresh_customer(self, channel: str, sender: str) -> Customer | None: ...

    async def set_attributes(
        self, customer_id: str, values: dict[str, object], *, source: str, verified: bool = False
    ) -> None: ...

    async def reachable_identities(self, customer_id: str) -> list[Identity]: ...

    async def counts(self, customer_id: str) -> dict[str, int]: ...

    async def export(self, customer_id: str) -> dict[str, Any]: ...

    async def erase(self, customer_id: str, *, by: str) -> dict[str, Any]: ...


class LinkStore(Protocol):
    """Proofs (one-time codes, deep links) and the links they make between customers, undoable."""

    async def save_proof(
        self, *, kind: str, digest: str, customer_id: str, channel: str, external_id: str, ttl: timedelta
    ) -> bool: ...

    async def claim_proof(self, kind: str, digest: str) -> tuple[str, str, str] | str: ...

    async def proofs_issued_since(self, channel: str, external_id: str, since: datetime) -> int: ...

    async def purge_proofs(self, older_than: timedelta) -> int: ...

    async def add_identity(self, customer_id: str, channel: str, external_id: str, address: str) -> None: ...

    async def merge(
        self,
        survivor_id: str,
        merged_id: str,
        *,
        method: str,
        by: str,
        keep_conversation: str | None,
        keep_state: str | None = None,
    ) -> LinkRecord: ...

    async def links(self, customer_id: str) -> list[LinkRecord]: ...

    async def unlink(self, link_id: str, *, by: str) -> LinkRecord: ...


class CustomerStore(ProfileStore, LinkStore, Protocol):
    """Profiles and links, as one backend serves them (the agent API, the customers CLI, linking)."""
