"""How many password guesses a login may cost, counted in the shared ``Limiter`` (Redis when configured).

Every attempt *reserves* its units before the password is hashed, so a burst of parallel guesses
cannot all pass the check before any is counted. The budgets (docs/handoff.md, "Logging in"):

- ``pair``: per e-mail *and* client address (5 in 15 min). A stranger guessing one agent's password
  spends only their own budget: the agent, from their own address, is not locked out.
- ``address``: per client address, for any e-mail (20 in 15 min): one address trying many accounts.
- ``email``: per e-mail from anywhere (50 in 15 min): many addresses guessing one account.

When a budget is spent the login is slowed, not refused for good: one attempt per ``slow`` seconds
(per e-mail + address, and per address) is still hashed, so the right password gets in after a
short wait, while further guesses are refused (429 with ``Retry-After``) without hashing anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from seamline.shared.limits import Limiter, take_all


@dataclass(frozen=True)
class Verdict:
    """``check``: hash the password now; else refuse, ``wait`` seconds until the next chance."""

    check: bool
    wait: float = 0.0


class LoginGuard:
    SLOW_SECONDS = 30.0  # over budget: one hashed attempt this often (per e-mail + address, per address)

    def __init__(
        self,
        *,
        limiter: Limiter,
        per_pair: int = 5,
        per_address: int = 20,
        per_email: int = 50,
        window: float = 15 * 60,
        slow: float | None = None,
    ) -> None:
        self._limiter = limiter
        self._pair, self._address, self._email = per_pair, per_address, per_email
        self._window, self._slow = window, self.SLOW_SECONDS if slow is None else slow

    async def attempt(self, email: str, address: str) -> Verdict:
        """Reserve one attempt for ``email`` from ``address`` (before hashing)."""
        spent = await take_all(
            self._limiter,
            [
                (f"login:pair:{email}|{address}", self._pair, self._window),
                (f"login:address:{address}", self._address, self._window),
                (f"login:email:{email}", self._email, self._window),
            ],
        )
        if not spent:
            return Verdict(True)
        # Over budget: the slow lane, one hashed attempt per ``slow`` seconds for this pair and address.
        wait = await take_all(
            self._limiter,
            [(f"login:slow:{email}|{address}", 1, self._slow), (f"login:slow-address:{address}", 1, self._slow)],
        )
        return Verdict(True) if not wait else Verdict(False, wait)

    async def succeeded(self, email: str, address: str) -> None:
        """The right password: this e-mail + address starts afresh (the wider budgets do not, or one
        valid account would reset an address's guessing at others)."""
        await self._limiter.clear(f"login:pair:{email}|{address}")
