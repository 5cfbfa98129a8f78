"""Client secrets and access tokens of the simulated Hostaway: issue, activation delay, expiry, revoke.

A token becomes usable ``1 s / time_scale`` after issue (Hostaway documents a ~1 s delay) and expires
after ``expires_in`` simulated seconds; revoked or expired tokens answer like an auth failure.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from enum import Enum

# Hostaway's documented example lifetime (~184 days), in simulated seconds.
DEFAULT_EXPIRES_IN_SECONDS = 15_897_600


def derive_client_secret(seed: int, account_id: int) -> str:
    """The account's API key: deterministic from seed and account id (a local stand-in, not a secret)."""
    return hmac.new(
        f"hostaway-simulator-secret:{seed}".encode(), str(account_id).encode(), hashlib.sha256
    ).hexdigest()


class TokenState(Enum):
    VALID = "valid"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass
class AccessToken:
    value: str
    account_id: int
    issued_at: float  # monotonic seconds
    usable_from: float
    expires_at: float
    expires_in: int
    revoked: bool = False


class TokenRegistry:
    """Every token the simulator issued, keyed by its value."""

    def __init__(
        self,
        time_scale: float,
        expires_in_seconds: int = DEFAULT_EXPIRES_IN_SECONDS,
        activation_delay_seconds: float = 1.0,
    ) -> None:
        self._time_scale = time_scale
        self._expires_in = expires_in_seconds
        self._activation_delay_real = activation_delay_seconds / time_scale
        self._tokens: dict[str, AccessToken] = {}
        self._lock = threading.Lock()

    def issue(self, account_id: int) -> AccessToken:
        now = time.monotonic()
        token = AccessToken(
            value=secrets.token_urlsafe(48),
            account_id=account_id,
            issued_at=now,
            usable_from=now + self._activation_delay_real,
            expires_at=now + self._expires_in / self._time_scale,
            expires_in=self._expires_in,
        )
        with self._lock:
            self._tokens[token.value] = token
        return token

    def lookup(self, value: str) -> AccessToken | None:
        with self._lock:
            return self._tokens.get(value)

    def issued_values(self) -> list[str]:
        """Every token value issued so far (tests scan logs for them)."""
        with self._lock:
            return list(self._tokens)

    def state_of(self, token: AccessToken | None) -> TokenState:
        if token is None:
            return TokenState.UNKNOWN
        if token.revoked:
            return TokenState.REVOKED
        now = time.monotonic()
        if now < token.usable_from:
            return TokenState.NOT_YET_VALID
        if now >= token.expires_at:
            return TokenState.EXPIRED
        return TokenState.VALID

    def revoke(self, value: str) -> bool:
        with self._lock:
            token = self._tokens.get(value)
            if token is None:
                return False
            token.revoked = True
            return True

    def revoke_all(self, account_id: int | None = None) -> int:
        with self._lock:
            hit = [t for t in self._tokens.values() if account_id is None or t.account_id == account_id]
            for token in hit:
                token.revoked = True
            return len(hit)

    def expire_all(self, account_id: int | None = None) -> int:
        now = time.monotonic()
        with self._lock:
            hit = [t for t in self._tokens.values() if account_id is None or t.account_id == account_id]
            for token in hit:
                token.expires_at = min(token.expires_at, now)
            return len(hit)
