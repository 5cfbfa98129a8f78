"""Typed Hostaway API errors: each names the endpoint, the account and the HTTP status, never a secret."""

from __future__ import annotations


class HostawayError(Exception):
    """Base class. ``endpoint`` is the path template (``/v1/reservations``), never a full URL with tokens."""

    def __init__(self, message: str, *, endpoint: str, account_id: int | None = None, status: int | None = None):
        self.endpoint = endpoint
        self.account_id = account_id
        self.status = status
        where = f"{endpoint}" + (f" for account {account_id}" if account_id is not None else "")
        super().__init__(f"{where}: {message}" + (f" (HTTP {status})" if status is not None else ""))


class HostawayAuthError(HostawayError):
    """Credentials refused (bad client secret, token still refused after one refresh)."""


class HostawayClientError(HostawayError):
    """A 4xx that retrying cannot fix (bad request, not found, locked resource)."""


class HostawayResponseError(HostawayError):
    """The server answered 2xx with something that is not the documented JSON envelope."""


class HostawayUnavailableError(HostawayError):
    """Retries exhausted on 429 / 5xx / timeouts / connection errors."""
