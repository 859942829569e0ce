"""Customers and their channel identities.

One customer may write from several channels; each (channel, sender) pair is an identity
that points at exactly one customer. Linking identities across channels is done only on
proof (a one-time code, a deep link, a site's signed identity; see docs/linking.md); until
then every new identity is a new customer, whatever phone or e-mail two customers share.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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
    attributes: dict = field(default_factory=dict)
    new: bool = False  # created by this very resolution: nothing to look up about them yet


@dataclass(frozen=True)
class Profile:
    """Everything known about a customer: the profile an agent sees and an export contains."""
    id: str
    name: str | None = None
    language: str | None = None
    last_channel: str | None = None
    attributes: dict = field(default_factory=dict)  # phone, email, and custom ones set by actions or agents
    attribute_meta: dict = field(default_factory=dict)  # key -> {"at", "source", "verified"}
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
    conflicts: tuple[dict, ...] = ()
