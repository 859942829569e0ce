"""Signed opaque tokens (HMAC-SHA256 with the server's secret key) that expire and survive a key change.

A token is ``<value>.<stamp>`` where the stamp is base64url(issued-at, 5 bytes of Unix seconds, +
the HMAC of purpose, value and issued-at). The purpose is mixed into the signature so a token made
for one purpose (a web visitor) is worthless for another; the issue time is signed, so a token is
refused once older than ``max_age`` (a user refreshes it by using it: the widget's ``welcome``
carries a fresh one). ``old_keys`` verify but never sign, so the secret key can be rotated without
logging every visitor out: move the old key there for longer than ``max_age``, then drop it.

Tokens from before issue times were signed (``<value>.<43-character HMAC>``) are taken as issued
at ``UNDATED_ISSUED_AT``, so they stop working ``max_age`` after this change shipped and are
replaced on their first use before that. A hand-rolled 40 lines instead of itsdangerous: the
format stays the one widgets already store (the value before the last dot), and the code is small.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable

UNDATED_ISSUED_AT = 1_796_256_000  # 2026-12-03 00:00 UTC: when tokens started carrying their issue time
_STAMP = 5  # bytes of issued-at
_MAC = 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


class Signer:
    def __init__(
        self,
        *,
        secret_key: str,
        purpose: str,
        old_keys: Iterable[str] = (),
        max_age: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``max_age`` in seconds (None: tokens never expire)."""
        if not secret_key:
            raise ValueError("a secret key is required")
        self._keys = [secret_key.encode()] + [k.encode() for k in old_keys if k]
        self._purpose = purpose.encode()
        self._max_age, self._clock = max_age, clock

    def _mac(self, key: bytes, value: str, issued: bytes | None) -> bytes:
        signed = (
            self._purpose
            + b"\0"
            + value.encode("utf-8", "surrogatepass")
            + (b"\0" + issued if issued is not None else b"")
        )
        return hmac.new(key, signed, hashlib.sha256).digest()

    def sign(self, value: str) -> str:
        issued = int(self._clock()).to_bytes(_STAMP, "big")
        return f"{value}.{_b64(issued + self._mac(self._keys[0], value, issued))}"

    def new(self) -> tuple[str, str]:
        """A fresh random value and its token."""
        value = secrets.token_urlsafe(16)
        return value, self.sign(value)

    def verify(self, token: object) -> str | None:
        """The value inside a genuine token that has not expired, else None."""
        if not isinstance(token, str) or len(token) > 256 or "." not in token:
            return None
        value, _, stamp = token.rpartition(".")
        raw = _unb64(stamp)
        if not value or raw is None:
            return None
        if len(raw) == _STAMP + _MAC:
            issued, mac = raw[:_STAMP], raw[_STAMP:]
            issued_at = int.from_bytes(issued, "big")
        elif len(raw) == _MAC:  # an undated token from before issue times were signed
            issued, mac, issued_at = None, raw, UNDATED_ISSUED_AT
        else:
            return None
        if not any(hmac.compare_digest(mac, self._mac(key, value, issued)) for key in self._keys):
            return None
        if self._max_age is not None and self._clock() - issued_at > self._max_age:
            return None
        return value
