"""Who is on the other end of a request: the client address, behind trusted proxies or not.

``X-Forwarded-For`` is believed only when the peer that sent it is a proxy the operator listed
(``SEAMLINE_TRUSTED_PROXIES``); otherwise any client could claim any address and slip past
per-address limits. The rightmost address that is not a trusted proxy is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(raw: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "127.0.0.1"]`` → networks; raises ValueError naming a bad entry."""
    found = []
    for item in raw:
        item = item.strip()
        if not item:
            continue
        try:
            found.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(found)


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(peer: str | None, forwarded_for: str | None, proxies: tuple[Network, ...] = ()) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the rightmost
    ``X-Forwarded-For`` hop that is not one. ``"unknown"`` when there is nothing to go by."""
    address = (peer or "").strip()
    if not address or not proxies or not _trusted(address, proxies) or not forwarded_for:
        return address or "unknown"
    for hop in reversed(forwarded_for.split(",")[:32]):
        hop = hop.strip()
        if not hop:
            continue
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop.strip("[]")))
            except ValueError:
                return address  # garbage in the header: the proxy itself is what we know
        address = hop
    return address


def forwarded_proto(peer: str | None, proto_header: str | None, proxies: tuple[Network, ...] = ()) -> str | None:
    """``X-Forwarded-Proto`` ("https"/"http") when a trusted proxy sent it, else None."""
    if not proto_header or not peer or not _trusted(peer, proxies):
        return None
    value = proto_header.split(",")[0].strip().lower()
    return value if value in ("http", "https") else None
