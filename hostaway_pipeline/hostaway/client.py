"""The Hostaway API client for one account: what each endpoint returns, complete and deduplicated.

Built on :class:`HostawayTransport` (pacing, retries, auth) and the paging strategies. Reads are
complete even when rows change during paging: reservations walk the ``afterId`` cursor (falling back
to offset pages plus a catch-up pass on servers that ignore it); conversations re-read the head of the
list when fewer distinct ids arrived than ``count`` (a conversation that moves up while paging). Message
fetches for many conversations run in parallel threads, all paced by the shared limiter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from hostaway_pipeline.hostaway.access_tokens import AccessToken, AccessTokenStore
from hostaway_pipeline.hostaway.errors import HostawayAuthError, HostawayClientError, HostawayResponseError
from hostaway_pipeline.hostaway.paging import PAGE_LIMIT, AfterIdPaging, CursorIgnored, OffsetPaging, Page
from hostaway_pipeline.hostaway.transport import CallStats, HostawayTransport, TokenSource

ACCESS_TOKENS = "/accessTokens"


@dataclass
class FetchResult:
    """Every object of one listing call, deduplicated by id, plus the server's ``count``."""

    objects: list[dict]
    reported_count: int | None

    @property
    def complete(self) -> bool:
        """Whether the read holds every object the API's ``count`` promised (unknown count: trust the walk).

        An incomplete read (rows moved between offset pages, a count that grew mid-walk) is still good
        for upserts, never for concluding that a row it lacks is gone upstream.
        """
        return self.reported_count is None or len(self.objects) >= self.reported_count


def newest_by_id(objects: Iterable[Mapping[str, Any]], version_keys: tuple[str, ...] = ("updatedOn",)) -> list[dict]:
    """Deduplicate by id keeping the newest version (by ``version_keys``, later read wins ties)."""
    chosen: dict[int, dict] = {}
    for candidate in objects:
        object_id = int(candidate["id"])
        current = chosen.get(object_id)
        if current is None or _version(candidate, version_keys) >= _version(current, version_keys):
            chosen[object_id] = dict(candidate)
    return list(chosen.values())


def _version(source_object: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(source_object.get(key) or "") for key in keys)


class AccountTokens(TokenSource):
    """Tokens for one account: in-process cache over the shared Postgres store; mints through the transport.

    A token is cached with the moment it becomes usable (Hostaway refuses a token in its first second),
    and every caller, not only the one that fetched or minted it, waits until then: a thread finding a
    freshly minted token in the cache must not send it early (that earns a 403 and a refresh cascade).
    """

    def __init__(self, store: AccessTokenStore, transport: HostawayTransport, client_secret: Callable[[], str],
                 stats: CallStats, sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.transport = transport
        self.client_secret = client_secret
        self.stats = stats
        self._sleep = sleep
        self._lock = threading.Lock()
        self._cached: AccessToken | None = None
        self._usable_at = 0.0  # time.monotonic() from which the cached token may be sent

    def _remember(self, token: AccessToken) -> AccessToken:
        """Cache ``token`` with its usable-at moment; call with the lock held."""
        self._cached = token
        self._usable_at = time.monotonic() + token.usable_in_seconds
        return token

    def _when_usable(self, token: AccessToken, usable_at: float) -> tuple[str, object]:
        """Sleep (outside the lock) until ``token`` is usable, then hand it out."""
        wait = usable_at - time.monotonic()
        if wait > 0:
            self._sleep(wait)
        return token.token, token.issued_at

    def token(self, account_id: int) -> tuple[str, object]:
        with self._lock:
            cached = self._cached
            if cached is None:
                cached = self._remember(
                    self.store.current(account_id)
                    or self.store.refresh(account_id, lambda: self._mint(account_id))
                )
            usable_at = self._usable_at
        return self._when_usable(cached, usable_at)

    def replace(self, account_id: int, failed_version: object) -> tuple[str, object]:
        with self._lock:
            cached = self._cached
            if cached is None or cached.issued_at == failed_version:  # else another thread already replaced it
                cached = self._remember(
                    self.store.refresh(account_id, lambda: self._mint(account_id), failed_version)  # type: ignore[arg-type]
                )
            usable_at = self._usable_at
        return self._when_usable(cached, usable_at)

    def _mint(self, account_id: int) -> tuple[str, float]:
        try:
            body = self.transport.request(
                "POST", ACCESS_TOKENS, account_id=account_id, endpoint=f"/v1{ACCESS_TOKENS}", stats=self.stats,
                tokens=None,
                form={"grant_type": "client_credentials", "client_id": str(account_id),
                      "client_secret": self.client_secret(), "scope": "general"},
            )
        except HostawayClientError as error:
            raise HostawayAuthError("the client secret was refused; check the account's credentials",
                                    endpoint=error.endpoint, account_id=account_id, status=error.status) from None
        payload = body.get("result") if isinstance(body, dict) and isinstance(body.get("result"), dict) else body
        if not isinstance(payload, dict) or not payload.get("access_token"):
            raise HostawayResponseError("no access_token in the token response", endpoint=f"/v1{ACCESS_TOKENS}",
                                        account_id=account_id)
        return str(payload["access_token"]), float(payload.get("expires_in") or 86400)


class HostawayClient:
    """Reads (and registers webhooks for) one Hostaway account."""

    def __init__(self, account_id: int, transport: HostawayTransport, token_store: AccessTokenStore,
                 client_secret: Callable[[], str], message_workers: int = 4) -> None:
        self.account_id = account_id
        self.transport = transport
        self.stats = CallStats()
        self.tokens = AccountTokens(token_store, transport, client_secret, self.stats)
        self.message_workers = message_workers

    # --- plumbing ---------------------------------------------------------------------------------

    def _get(self, path: str, endpoint: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.transport.request("GET", path, account_id=self.account_id, endpoint=endpoint,
                                      stats=self.stats, tokens=self.tokens, params=params)

    def _fetcher(self, path: str, endpoint: str) -> Callable[[dict[str, Any]], Mapping[str, Any]]:
        def fetch(params: dict[str, Any]) -> Mapping[str, Any]:
            body = self._get(path, endpoint, params)
            if not isinstance(body, dict) or not isinstance(body.get("result"), list):
                raise HostawayResponseError("expected an envelope with a 'result' list", endpoint=endpoint,
                                            account_id=self.account_id)
            self.stats.add(pages=1)
            return body

        return fetch

    @staticmethod
    def _collect(pages: Iterable[Page]) -> tuple[list[dict], int | None]:
        rows: list[dict] = []
        count: int | None = None
        for page in pages:
            rows.extend(page.rows)
            count = page.count if page.count is not None else count
        return rows, count

    # --- resources --------------------------------------------------------------------------------

    def listings(self) -> FetchResult:
        rows, count = self._collect(OffsetPaging().pages(self._fetcher("/listings", "/v1/listings"), {}))
        return FetchResult(newest_by_id(rows, ("latestActivityOn",)), count)

    def reservations(self, **filters: Any) -> FetchResult:
        """All reservations matching ``filters`` (e.g. ``latestActivityStart``), each exactly once, newest version."""
        fetch = self._fetcher("/reservations", "/v1/reservations")
        try:
            rows, count = self._collect(AfterIdPaging().pages(fetch, filters))
        except CursorIgnored:
            rows, count = self._reservations_by_offset(fetch, filters)
        return FetchResult(newest_by_id(rows, ("updatedOn", "latestActivityOn")), count)

    def _reservations_by_offset(self, fetch, filters: Mapping[str, Any]) -> tuple[list[dict], int | None]:
        """Offset pages in the default ``updatedOn DESC`` order never skip an unchanged row (changes push
        rows later, so at worst one is read twice); a row that changed mid-walk is re-read by a catch-up
        on ``latestActivityStart`` from the newest activity seen when the walk began."""
        rows, count = self._collect(OffsetPaging().pages(fetch, filters))
        if not rows:
            return rows, count
        walk_began = max(str(row.get("latestActivityOn") or row.get("updatedOn") or "") for row in rows[:PAGE_LIMIT])
        if walk_began:
            catch_up, _ = self._collect(OffsetPaging().pages(fetch, {**filters, "latestActivityStart": walk_began}))
            rows.extend(catch_up)
        return rows, count

    def conversations(self) -> FetchResult:
        fetch = self._fetcher("/conversations", "/v1/conversations")
        rows, count = self._collect(OffsetPaging().pages(fetch, {}))
        # A conversation whose messageSentOn moves up while we page jumps to the head of the list,
        # possibly past our offset: re-read the head until nothing new appears.
        seen = {int(row["id"]) for row in rows}
        offset = 0
        while count is not None and len(seen) < count and offset < count:
            page = next(iter(OffsetPaging(start_offset=offset).pages(fetch, {})))
            new_ids = {int(row["id"]) for row in page.rows} - seen
            rows.extend(page.rows)
            seen |= new_ids
            count = page.count if page.count is not None else count
            if not new_ids:
                break
            offset += PAGE_LIMIT
        return FetchResult(newest_by_id(rows, ("messageSentOn", "messageReceivedOn")), count)

    def messages(self, conversation_id: int, include_scheduled: bool = True) -> FetchResult:
        params = {"includeScheduledMessages": 1} if include_scheduled else {}
        endpoint = "/v1/conversations/{id}/messages"
        try:
            rows, count = self._collect(OffsetPaging().pages(
                self._fetcher(f"/conversations/{int(conversation_id)}/messages", endpoint), params))
        except HostawayClientError as error:
            if error.status == 404:  # the conversation vanished since we listed it
                return FetchResult([], 0)
            raise
        return FetchResult(newest_by_id(rows, ("updatedOn",)), count)

    def messages_for_conversations(self, conversation_ids: Iterable[int],
                                   include_scheduled: bool = True) -> dict[int, FetchResult]:
        """Messages of many conversations, fetched by ``message_workers`` threads through the shared pacing."""
        ids = list(dict.fromkeys(int(c) for c in conversation_ids))
        with ThreadPoolExecutor(max_workers=max(1, self.message_workers), thread_name_prefix="messages") as pool:
            results = pool.map(lambda cid: (cid, self.messages(cid, include_scheduled)), ids)
            return dict(results)

    def message(self, conversation_id: int, message_id: int) -> dict:
        body = self._get(f"/conversations/{int(conversation_id)}/messages/{int(message_id)}",
                         "/v1/conversations/{id}/messages/{messageId}")
        result = body.get("result") if isinstance(body, dict) else None
        if not isinstance(result, dict):
            raise HostawayResponseError("expected a message object in 'result'", endpoint="/v1/conversations/{id}/"
                                        "messages/{messageId}", account_id=self.account_id)
        return result

    # --- unified webhooks -------------------------------------------------------------------------

    def unified_webhooks(self) -> list[dict]:
        body = self._get("/webhooks/unifiedWebhooks", "/v1/webhooks/unifiedWebhooks")
        return list(body.get("result") or [])

    def _webhook_call(self, method: str, webhook_id: int | None = None, payload: Any = None) -> Any:
        path = "/webhooks/unifiedWebhooks" + (f"/{int(webhook_id)}" if webhook_id is not None else "")
        endpoint = "/v1/webhooks/unifiedWebhooks" + ("/{id}" if webhook_id is not None else "")
        body = self.transport.request(method, path, account_id=self.account_id, endpoint=endpoint,
                                      stats=self.stats, tokens=self.tokens, json_body=payload)
        return body.get("result") if isinstance(body, dict) else body

    def create_unified_webhook(self, payload: Mapping[str, Any]) -> dict:
        return self._webhook_call("POST", payload=dict(payload))

    def update_unified_webhook(self, webhook_id: int, payload: Mapping[str, Any]) -> dict:
        return self._webhook_call("PUT", webhook_id, dict(payload))

    def delete_unified_webhook(self, webhook_id: int) -> None:
        self._webhook_call("DELETE", webhook_id)
