"""Customers and their channel identities.

One customer may write from several channels; each (channel, sender) pair is an identity
that points at exactly one customer. Linking identities across channels is done only on
proof (see docs/); until then every new identity is a new customer.
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
    new: bool = False  # created by this very resolution: nothing to look up about them yet
