"""Signed opaque tokens (HMAC-SHA256 with the server's secret key).

A token is ``<value>.<signature>``; the purpose is mixed into the signature so a token made
for one purpose (a web visitor) is worthless for another.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Signer:
    def __init__(self, *, secret_key: str, purpose: str) -> None:
        if not secret_key:
            raise ValueError("a secret key is required")
        self._key = secret_key.encode()
        self._purpose = purpose.encode()

    def _signature(self, value: str) -> str:
        return _b64(hmac.new(self._key, self._purpose + b"\0" + value.encode(), hashlib.sha256).digest())

    def sign(self, value: str) -> str:
        return f"{value}.{self._signature(value)}"

    def new(self) -> tuple[str, str]:
        """A fresh random value and its token."""
        value = secrets.token_urlsafe(16)
        return value, self.sign(value)

    def verify(self, token: object) -> str | None:
        """The value inside a genuine token, else None."""
        if not isinstance(token, str) or len(token) > 256 or "." not in token:
            return None
        value, _, signature = token.rpartition(".")
        if value and hmac.compare_digest(signature, self._signature(value)):
            return value
        return None
