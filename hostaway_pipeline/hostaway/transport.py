"""The HTTP layer every Hostaway request goes through: pacing, auth, retries, JSON, counting.

One ``requests.Session`` per process and source address (connection pooling across threads); a transport
given a ``source_address`` binds its connections to that local IP (``HOSTAWAY_SOURCE_ADDRESS``, for a host
with one IP per egress pool), else the OS chooses. For each attempt it first
acquires a slot from the shared :class:`RateLimiter`, so retries are paced like any other call; the
acquire's deadline is the end of the request's retry budget (``max_total_seconds``), and running past it
ends the request with :class:`HostawayUnavailableError` instead of waiting on. It retries 429, 5xx,
timeouts, connection errors and bodies cut off mid-way with bounded full-jitter backoff, never other 4xx;
``Retry-After`` is honoured only as a finite non-negative number or a date, and capped at the limiter's
maximum pause. A 429 is reported to the limiter with how long ago the call was sent, and the limiter
pauses the account's bucket (and the egress IP's only when this deployment filled the IP window); the
next acquire waits the pause out. On 401, or a 403 whose body looks like an auth failure, it refreshes the
token once per request. Errors are typed and never carry a secret: only the endpoint template, account id
and status.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

from hostaway_pipeline.hostaway.errors import (
    HostawayAuthError,
    HostawayClientError,
    HostawayResponseError,
    HostawayUnavailableError,
)
from hostaway_pipeline.hostaway.rate_limiter import RateLimitDeadlineExceeded, RateLimiter
from hostaway_pipeline.hostaway.retry_policy import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after

# A connection dropped mid-body surfaces as ChunkedEncodingError (urllib3's ProtocolError/IncompleteRead
# underneath), a garbled compressed body as ContentDecodingError: neither is a requests.ConnectionError,
# yet both are transient transport failures like a reset. ProtocolError is listed in case a urllib3
# path ever lets it through unwrapped.
_BROKEN_BODY_ERRORS: tuple[type[Exception], ...] = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.ProtocolError,
)

_AUTH_WORDS = ("token", "auth", "unauthori", "expired", "invalid", "credential", "forbidden access")


def looks_like_auth_failure(status: int, body_text: str) -> bool:
    """401 always; 403 when the body talks about tokens/auth, or says nothing usable (empty, or an HTML
    page from a proxy): never a 403 that says the resource is locked."""
    if status == 401:
        return True
    if status != 403:
        return False
    lowered = body_text.strip().lower()
    if "lock" in lowered:
        return False
    return not lowered or lowered.startswith("<") or any(word in lowered for word in _AUTH_WORDS)


@dataclass
class CallStats:
    """Counts for one unit of work (a sync of one resource); thread-safe."""

    calls: int = 0
    pages: int = 0
    retries: int = 0
    throttled_429: int = 0
    token_refreshes: int = 0
    rate_limit_wait_seconds: float = 0.0
    calls_by_endpoint: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **increments: float) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self, name, getattr(self, name) + value)

    def count_call(self, endpoint_name: str) -> None:
        with self._lock:
            self.calls += 1
            self.calls_by_endpoint[endpoint_name] += 1

    def as_metadata(self) -> dict[str, Any]:
        return {
            "api_calls": self.calls,
            "pages": self.pages,
            "retries": self.retries,
            "http_429": self.throttled_429,
            "token_refreshes": self.token_refreshes,
            "rate_limit_wait_seconds": round(self.rate_limit_wait_seconds, 3),
        }


class _SourceAddressAdapter(HTTPAdapter):
    """An adapter whose connections (direct or through a proxy) leave from one local IP address."""

    def __init__(self, source_address: str, **kwargs: Any) -> None:
        self._source_address = (source_address, 0)  # port 0: any local port
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, source_address=self._source_address, **kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        return super().proxy_manager_for(proxy, source_address=self._source_address, **proxy_kwargs)


_sessions: dict[tuple[int, str | None], requests.Session] = {}
_sessions_lock = threading.Lock()


def process_session(source_address: str | None = None) -> requests.Session:
    """The process's shared Session for a source address (None: the OS chooses); a forked child gets its own,
    never its parent's sockets."""
    key = (os.getpid(), source_address)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = requests.Session()
            options: dict[str, Any] = {"pool_connections": 4, "pool_maxsize": 32, "max_retries": 0}
            adapter = (HTTPAdapter(**options) if source_address is None
                       else _SourceAddressAdapter(source_address, **options))
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = "hostaway-pipeline/0.1"
            _sessions[key] = session
        return session


class TokenSource:
    """What the transport needs from auth: a token for an account, and a way to replace a failed one."""

    def token(self, account_id: int) -> tuple[str, object]:  # (token, opaque version)
        raise NotImplementedError

    def replace(self, account_id: int, failed_version: object) -> tuple[str, object]:
        raise NotImplementedError

    def young_retry_seconds(self, version: object) -> float | None:
        """For a token that became usable only moments ago: how long to wait before sending it once more
        (Hostaway may not have activated it everywhere yet); None for an older token (refresh it)."""
        return None


class HostawayTransport:
    def __init__(
        self,
        base_url: str,
        limiter: RateLimiter,
        retry_policy: RetryPolicy | None = None,
        timeout_seconds: tuple[float, float] = (10.0, 30.0),
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        source_address: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.retry_policy = retry_policy or RetryPolicy()
        self.timeout_seconds = timeout_seconds
        self._session = session
        self._sleep = sleep
        self.source_address = source_address

    @property
    def session(self) -> requests.Session:
        return self._session or process_session(self.source_address)

    def request(
        self,
        method: str,
        path: str,
        *,
        account_id: int,
        endpoint: str,
        stats: CallStats,
        tokens: TokenSource | None,
        params: Mapping[str, Any] | None = None,
        form: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> Any:
        """Send until success or a final failure; returns the parsed JSON body."""
        policy = self.retry_policy
        started = time.monotonic()
        attempt = 0
        refreshed = False
        retried_young = False
        token, token_version = tokens.token(account_id) if tokens else (None, None)
        endpoint_name = endpoint.rsplit("/", 1)[-1] if "{" not in endpoint else endpoint
        deadline = started + policy.max_total_seconds
        last_failure = ""
        while True:
            attempt += 1
            try:
                stats.add(rate_limit_wait_seconds=self.limiter.acquire(account_id, deadline=deadline))
            except RateLimitDeadlineExceeded as error:
                after = f" after {attempt - 1} attempts (last failure: {last_failure})" if last_failure else ""
                raise HostawayUnavailableError(
                    f"gave up within the {policy.max_total_seconds:g} s retry budget{after}: {error}",
                    endpoint=endpoint, account_id=account_id,
                ) from None
            headers = {"Accept": "application/json"}
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            failure: str
            retry_after: float | None = None
            stats.count_call(endpoint_name)
            sent_at = time.monotonic()
            try:
                response = self.session.request(
                    method, f"{self.base_url}{path}", params=params, data=form, json=json_body,
                    headers=headers, timeout=self.timeout_seconds,
                )
            except requests.Timeout:
                failure = "timed out"
            except requests.ConnectionError as error:
                failure = f"connection failed ({type(error).__name__})"
            except _BROKEN_BODY_ERRORS as error:  # headers arrived, the body did not (whole)
                failure = f"response body broken off or undecodable ({type(error).__name__})"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return self._parse(response, endpoint, account_id)
                body_text = response.text[:500]
                if tokens is not None and looks_like_auth_failure(status, body_text):
                    young_wait = None if retried_young else tokens.young_retry_seconds(token_version)
                    if young_wait is not None:  # the same token once more, before any refresh
                        retried_young = True
                        self._sleep(young_wait)
                        attempt -= 1
                        continue
                    if refreshed:
                        raise HostawayAuthError("token refused even after a refresh", endpoint=endpoint,
                                                account_id=account_id, status=status)
                    refreshed = True
                    stats.add(token_refreshes=1)
                    token, token_version = tokens.replace(account_id, token_version)
                    attempt -= 1  # a refresh is not a failed attempt
                    continue
                if status not in RETRYABLE_STATUSES:
                    error_type = HostawayAuthError if status in (401, 403) and tokens is None else HostawayClientError
                    raise error_type(_server_message(body_text), endpoint=endpoint, account_id=account_id,
                                     status=status)
                retry_after = parse_retry_after(response.headers.get("Retry-After"),
                                                max_seconds=self.limiter.max_pause_seconds)
                failure = f"HTTP {status}"
                if status == 429:
                    stats.add(throttled_429=1)
                    self.limiter.report_throttled(account_id, retry_after,
                                                  sent_seconds_ago=time.monotonic() - sent_at)
            last_failure = failure
            elapsed = time.monotonic() - started
            delay = policy.backoff_seconds(attempt, retry_after)
            if attempt >= policy.max_attempts or elapsed + delay > policy.max_total_seconds:
                raise HostawayUnavailableError(
                    f"gave up after {attempt} attempts in {elapsed:.1f} s; last failure: {failure}",
                    endpoint=endpoint, account_id=account_id,
                )
            stats.add(retries=1)
            if failure.startswith("HTTP 429"):
                continue  # the limiter now holds the pause; the next acquire waits it out
            self._sleep(delay)

    @staticmethod
    def _parse(response: requests.Response, endpoint: str, account_id: int) -> Any:
        try:
            body = response.json()
        except (json.JSONDecodeError, ValueError):
            # Never quote the body: even a broken one can carry guest data or a token into the logs.
            content_type = (response.headers.get("Content-Type") or "none")[:100]
            raise HostawayResponseError(
                f"the response is not valid JSON (content type {content_type!r}, {len(response.content)} bytes)",
                endpoint=endpoint, account_id=account_id, status=response.status_code,
            ) from None
        if isinstance(body, dict) and body.get("status") == "fail":
            raise HostawayClientError(_server_message(json.dumps(body)), endpoint=endpoint,
                                      account_id=account_id, status=response.status_code)
        return body


def _server_message(body_text: str) -> str:
    try:
        message = json.loads(body_text).get("message")
    except (ValueError, AttributeError):
        message = None
    return f"server said: {message or body_text[:200]!r}"
