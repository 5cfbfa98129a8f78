"""The Hostaway API client for one account: what each endpoint returns, deduplicated, and whether whole.

Built on :class:`HostawayTransport` (pacing, retries, auth) and the paging strategies. Reads tolerate
every reading of the API the docs leave open and rows changing while they page: reservations walk the
``afterId`` cursor (an offset walk when the server does not follow it) plus a catch-up on recent
activity; conversations re-read the head of the list after a whole walk, and ``conversations_head`` reads
only down to the first page reaching back before a moment (the intraday pass).
Each read says whether it is complete (distinct objects >= the API's ``count``); ``lookup`` reads one
object by id, which is how a sync proves a row gone (404) before deleting it. Message fetches for many
conversations run in parallel threads, all paced by the shared limiter, and fail one conversation at a
time, never the batch.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from hostaway_pipeline.hostaway.access_tokens import AccessToken, AccessTokenStore
from hostaway_pipeline.hostaway.errors import (
    HostawayAuthError,
    HostawayClientError,
    HostawayError,
    HostawayResponseError,
)
from hostaway_pipeline.hostaway.paging import (
    PAGE_LIMIT,
    AfterIdPaging,
    CursorUnusable,
    Fetch,
    OffsetPaging,
    Page,
    page_of,
    row_id,
)
from hostaway_pipeline.hostaway.transport import CallStats, HostawayTransport, TokenSource

ACCESS_TOKENS = "/accessTokens"
RESERVATION_VERSION_KEYS = ("updatedOn", "latestActivityOn")
CONVERSATION_VERSION_KEYS = ("messageSentOn", "messageReceivedOn")
# A head walk of the conversation list that has not reached back to its boundary after this many pages is
# no cheaper than the whole list: the caller reads that instead.
CONVERSATIONS_HEAD_MAX_PAGES = 3
# Catch-up reads of recently active reservations, each repeated only while the previous one found new
# rows or versions (the account is changing as we read); one round costs one call on a quiet account.
CATCH_UP_ROUNDS = 4
# A 403 on a token that became usable less than this many activation delays ago (5 s against Hostaway) is
# retried once with the same token, after another activation delay, before any refresh: minting again
# would only start a new, younger token.
YOUNG_TOKEN_ACTIVATION_DELAYS = 5.0


@dataclass
class FetchResult:
    """Every object of one read, deduplicated by id (newest version kept), and what proves it whole.

    ``reported_count`` is the API's ``count`` for the read (a cursorless request's, so the total, not
    what remains after a cursor). ``complete`` says whether the read holds at least that many distinct
    objects; an incomplete read is still good for upserts, never for concluding that a row it lacks is
    gone upstream. Even a complete read is no proof of deletion for a row it lacks (rows shift between
    offset pages while others are deleted): the sync confirms each deletion by id.
    """

    objects: list[dict]
    reported_count: int | None
    complete: bool = True
    strategy: str = "offset"
    notes: list[str] = field(default_factory=list)

    @property
    def ids(self) -> set[int]:
        return {i for i in (row_id(o) for o in self.objects) if i is not None}


@dataclass
class ReservationChanges:
    """The reservations changed since a moment (see ``HostawayClient.reservations_changed_since``).

    ``total_count`` is the API's count of all the account's reservations (from the cursorless head page);
    ``window_count`` the count of the ``latestActivityStart`` window; ``complete`` whether both reads hold
    what their counts promised; ``newest_head`` the row with the newest ``updatedOn`` the API served.
    """

    objects: list[dict]
    total_count: int | None
    window_count: int | None
    complete: bool
    strategy: str
    notes: list[str] = field(default_factory=list)
    newest_head: dict | None = None
    # When incomplete: which read fell short ("head" or "window"), the distinct objects it held and its count.
    short_read: tuple[str, int, int | None] | None = None

    @property
    def ids(self) -> set[int]:
        return {i for i in (row_id(o) for o in self.objects) if i is not None}


@dataclass
class ConversationsHead:
    """The head of the conversation list down to a proved boundary (``HostawayClient.conversations_head``).

    ``objects``: every conversation on the pages read, newest version; ``proved`` whether the walk reached a
    page whose oldest conversation was last sent to before ``since`` (or the end of the list): only then
    does it hold every conversation whose ``messageSentOn`` moved at or after ``since``. ``reason`` says why
    not, when not.
    """

    objects: list[dict]
    reported_count: int | None
    pages: int
    proved: bool
    reason: str = ""


class TooManyChanges(Exception):
    """An incremental read cannot bound what changed (more than a page of updates): read in full instead."""


def _readable_stamp(value: object) -> bool:
    """A ``YYYY-MM-DD HH:MM:SS`` text that compares in time order as a string."""
    return isinstance(value, str) and len(value) == 19 and value[4] == "-" and value[10] == " "


def _oldest_sent(rows: list[dict]) -> str:
    """The oldest readable ``messageSentOn`` among ``rows`` (those of the pages read before)."""
    return min((str(row["messageSentOn"]) for row in rows if isinstance(row, Mapping)
                and _readable_stamp(row.get("messageSentOn"))), default="")


def newest_by_id(objects: Iterable[Any], version_keys: tuple[str, ...] = ("updatedOn",)) -> list[dict]:
    """Deduplicate by id keeping the newest version (by ``version_keys``, later read wins ties).

    Rows without a usable id are kept as they are: the writer counts and skips them.
    """
    chosen: dict[int, dict] = {}
    unusable: list[dict] = []
    for candidate in objects:
        object_id = row_id(candidate)
        if object_id is None:
            unusable.append(candidate)
            continue
        current = chosen.get(object_id)
        if current is None or _version(candidate, version_keys) >= _version(current, version_keys):
            chosen[object_id] = dict(candidate)
    return [*chosen.values(), *unusable]


def _newest(rows: Iterable[Any], key: str) -> str | None:
    values = [str(row[key]) for row in rows if isinstance(row, Mapping) and row.get(key)]
    return max(values) if values else None


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

    def young_retry_seconds(self, version: object) -> float | None:
        with self._lock:
            cached, usable_at = self._cached, self._usable_at
        if cached is None or cached.issued_at != version:
            return None
        delay = max(self.store.activation_delay_seconds, 0.0)
        if time.monotonic() - usable_at > YOUNG_TOKEN_ACTIVATION_DELAYS * delay:
            return None
        return delay

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
        token = payload["access_token"]
        if not _plain_token(token):
            # Never echo it: a token with a newline would otherwise reach a header error, a log, the event log.
            raise HostawayResponseError(
                f"the token response held an access_token that is not a plain printable string "
                f"({type(token).__name__}, {len(token) if isinstance(token, str) else '?'} characters); refused",
                endpoint=f"/v1{ACCESS_TOKENS}", account_id=account_id)
        return token, _expires_in_seconds(payload.get("expires_in"))


def _plain_token(token: object) -> bool:
    """A bearer token we can send: printable ASCII without spaces, of a sane length."""
    return (isinstance(token, str) and 0 < len(token) <= 8192 and token.isascii() and token.isprintable()
            and not any(character.isspace() for character in token))


def _expires_in_seconds(value: object) -> float:
    """``expires_in`` as seconds; a missing, non-numeric or non-positive value means a day (re-minted then)."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 86400.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 86400.0


class HostawayClient:
    """Reads (and registers webhooks for) one Hostaway account."""

    def __init__(self, account_id: int, transport: HostawayTransport, token_store: AccessTokenStore,
                 client_secret: Callable[[], str], message_workers: int = 4) -> None:
        self.account_id = account_id
        self.transport = transport
        self.stats = CallStats()
        self.tokens = AccountTokens(token_store, transport, client_secret, self.stats)
        self.message_workers = message_workers
        self._activity_dates_only = False  # the server refused a date-time latestActivityStart

    # --- plumbing ---------------------------------------------------------------------------------

    def _get(self, path: str, endpoint: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.transport.request("GET", path, account_id=self.account_id, endpoint=endpoint,
                                      stats=self.stats, tokens=self.tokens, params=params)

    def _fetcher(self, path: str, endpoint: str) -> Fetch:
        def fetch(params: dict[str, Any]) -> Mapping[str, Any]:
            body = self._get(path, endpoint, params)
            if not isinstance(body, dict) or not isinstance(body.get("result"), list):
                raise HostawayResponseError("expected an envelope with a 'result' list", endpoint=endpoint,
                                            account_id=self.account_id)
            self.stats.add(pages=1)
            return body

        return fetch

    def _reservations_fetcher(self) -> Fetch:
        """The reservations fetcher, tolerant of a server that reads ``latestActivityStart`` as a date only.

        The docs leave open whether the filter takes a date-time or only a date. A cursorless request with
        a date-time start that answers 400 is sent again with the date alone (the day from 00:00:00: a
        superset, so nothing is missed), and so is every later one of this client.
        """
        fetch = self._fetcher("/reservations", "/v1/reservations")

        def fetch_reservations(params: dict[str, Any]) -> Mapping[str, Any]:
            start = params.get("latestActivityStart")
            if self._activity_dates_only and start:
                return fetch({**params, "latestActivityStart": str(start)[:10]})
            try:
                return fetch(params)
            except HostawayClientError as error:
                if error.status != 400 or not start or len(str(start)) <= 10 or "afterId" in params:
                    raise
            self._activity_dates_only = True
            return fetch({**params, "latestActivityStart": str(start)[:10]})

        return fetch_reservations

    @staticmethod
    def _collect(pages: Iterable[Page]) -> tuple[list[dict], int | None]:
        rows: list[dict] = []
        count: int | None = None
        for page in pages:
            rows.extend(page.rows)
            count = page.count if page.count is not None else count
        return rows, count

    # --- completeness -----------------------------------------------------------------------------

    def _count_now(self, fetch: Fetch, filters: Mapping[str, Any]) -> int | None:
        """The API's ``count`` right now (one cursorless one-row request)."""
        envelope = fetch({**filters, "limit": 1})
        count = envelope.get("count")
        return count if isinstance(count, int) and not isinstance(count, bool) else None

    def _settle(self, rows: list[dict], count: int | None, version_keys: tuple[str, ...], strategy: str,
                notes: list[str], fetch: Fetch,
                filters: Mapping[str, Any]) -> FetchResult:
        """Deduplicate and judge completeness: as many distinct objects as ``count`` promised.

        A walk can end short of the count it began with because rows were deleted meanwhile; one more
        cursorless request then tells whether the distinct objects read cover the count as it is now.
        """
        objects = newest_by_id(rows, version_keys)
        distinct = sum(1 for o in objects if row_id(o) is not None)
        complete = count is None or distinct >= count
        if not complete:
            recount = self._count_now(fetch, filters)
            notes.append(f"read {distinct} of the {count} counted at the start; the API counts {recount} now")
            if recount is not None:
                count = recount
                complete = distinct >= recount
        return FetchResult(objects, count, complete, strategy, notes)

    # --- resources --------------------------------------------------------------------------------

    def listings(self) -> FetchResult:
        fetch = self._fetcher("/listings", "/v1/listings")
        rows, count = self._collect(OffsetPaging().pages(fetch, {}))
        return self._settle(rows, count, ("latestActivityOn",), "offset", [], fetch, {})

    def reservations(self, **filters: Any) -> FetchResult:
        """All reservations matching ``filters`` (e.g. ``latestActivityStart``), each once, newest version.

        Correct under every reading of ``afterId`` the docs leave open (see the paging module), with rows
        updated, created and deleted during the walk:

        1. the cursor walk (first page without a cursor, then the id of the last row just received);
        2. if the server does not follow the cursor, refuses it, or the walk ends short of ``count``:
           an offset walk in the default order (deprecated, but what servers that ignore the cursor serve);
        3. a catch-up on ``latestActivityStart`` from the newest activity on the first page, which any row
           changed after that page was served carries, so rows that moved behind the cursor (or between
           offset pages) are read; repeated while it still brings new rows or versions, a bounded number
           of times.
        """
        fetch = self._reservations_fetcher()
        rows: list[dict] = []
        count: int | None = None
        activity_mark: str | None = None
        notes: list[str] = []
        strategy = "afterId"
        fallback_reason: str | None = None
        try:
            for page in AfterIdPaging().pages(fetch, filters):
                if activity_mark is None:
                    count = page.count
                    activity_mark = _newest(page.rows, "latestActivityOn") or ""
                rows.extend(page.rows)
        except CursorUnusable as error:
            fallback_reason = str(error)
        except HostawayClientError as error:
            if activity_mark is None or error.status not in (400, 404, 422):
                raise  # the first, cursorless page failed: nothing to fall back from
            fallback_reason = f"the server refused an afterId cursor (HTTP {error.status})"
        distinct = len({i for i in map(row_id, rows) if i is not None})
        if fallback_reason is None and count is not None and distinct < count:
            fallback_reason = f"the afterId walk ended after {distinct} of {count} reservations"
        if fallback_reason is not None:
            notes.append(fallback_reason + "; read again by offset")
            strategy = "offset"
            offset_rows, offset_count = self._collect(OffsetPaging().pages(fetch, filters))
            if not activity_mark:
                activity_mark = _newest(offset_rows[:PAGE_LIMIT], "latestActivityOn") or ""
            rows.extend(offset_rows)
            count = offset_count if offset_count is not None else count
        if activity_mark and len(rows) >= PAGE_LIMIT:  # one page read in one request: nothing moved between pages
            rows.extend(self._reservations_catch_up(fetch, filters, activity_mark, rows, notes))
        return self._settle(rows, count, RESERVATION_VERSION_KEYS, strategy, notes, fetch, filters)

    def _reservations_catch_up(self, fetch: Fetch,
                               filters: Mapping[str, Any], activity_mark: str, rows: list[dict],
                               notes: list[str]) -> list[dict]:
        """Reservations whose latest activity is at or after ``activity_mark``, until nothing new arrives."""
        start = max(activity_mark, str(filters.get("latestActivityStart") or ""))
        known = {(row_id(row), _version(row, RESERVATION_VERSION_KEYS)) for row in rows}
        caught: list[dict] = []
        for _ in range(CATCH_UP_ROUNDS):
            window = {**filters, "latestActivityStart": start}
            try:
                round_rows, _ = self._collect(AfterIdPaging().pages(fetch, window))
            except (CursorUnusable, HostawayClientError) as error:
                if isinstance(error, HostawayClientError) and error.status not in (400, 404, 422):
                    raise
                round_rows, _ = self._collect(OffsetPaging().pages(fetch, window))
            new = [row for row in round_rows if (row_id(row), _version(row, RESERVATION_VERSION_KEYS)) not in known]
            caught.extend(round_rows)
            if not new:
                return caught
            known |= {(row_id(row), _version(row, RESERVATION_VERSION_KEYS)) for row in new}
        notes.append(f"reservations still changing after {CATCH_UP_ROUNDS} catch-up rounds")
        return caught

    def reservations_changed_since(self, since: str) -> ReservationChanges:
        """Every reservation changed at or after ``since`` (API clock, ``YYYY-MM-DD HH:MM:SS``), and the proof.

        Two reads, because the docs do not say which changes move ``latestActivityOn``:

        1. the window ``latestActivityStart=since``, read like any reservations read (cursor walk, offset
           fallback, catch-up rounds for rows moving while it pages; complete when it holds ``count``);
        2. the head of the default order (``updatedOn DESC``, documented), one cursorless page: every row
           updated at or after ``since`` is on it when the page also holds an older row (or the whole list),
           which catches the edits that move ``updatedOn`` alone. Its ``count`` is the account's total.

        Raises :class:`TooManyChanges` when the head page cannot bound the updates (a page of them, or a head
        not in the documented order): only a full listing can then say what changed. A read that ends short
        of a ``count`` (the window's, or a head page short of the total) is returned with ``complete=False``.
        """
        window = self.reservations(latestActivityStart=since)
        fetch = self._fetcher("/reservations", "/v1/reservations")
        head = page_of(fetch({"limit": PAGE_LIMIT}))
        notes = list(window.notes)
        total = head.count
        complete = window.complete
        short_read = None if window.complete else ("window", len(window.ids), window.reported_count)
        if total is None or len(head.rows) < min(PAGE_LIMIT, total):
            complete = False
            short_read = ("head", len({i for i in map(row_id, head.rows) if i is not None}), total)
            notes.append(f"the head page held {len(head.rows)} reservations of the {total} counted")
        elif len(head.rows) < total:  # not the whole list: the page must reach back past ``since``
            updated = [str(row.get("updatedOn")) for row in head.rows
                       if isinstance(row, Mapping) and _readable_stamp(row.get("updatedOn"))]
            if updated != sorted(updated, reverse=True):
                raise TooManyChanges("the head of the reservations list is not in updatedOn DESC order, so it cannot "
                                     "bound what changed")
            if not updated or updated[-1] >= since:
                raise TooManyChanges(f"a whole page of reservations was updated since {since}")
        changed = [row for row in head.rows if not isinstance(row, Mapping) or not _readable_stamp(row.get("updatedOn"))
                   or str(row["updatedOn"]) >= since]
        objects = newest_by_id([*window.objects, *changed], RESERVATION_VERSION_KEYS)
        newest_head = max((row for row in head.rows if isinstance(row, Mapping)
                           and _readable_stamp(row.get("updatedOn"))),
                          key=lambda row: str(row["updatedOn"]), default=None)
        return ReservationChanges(objects, total, window.reported_count, complete, f"incremental/{window.strategy}",
                                  notes, dict(newest_head) if newest_head is not None else None, short_read)

    def conversations(self) -> FetchResult:
        """Every conversation. The list is ordered by ``messageSentOn`` descending, and a conversation that
        sends a message (or a new one) jumps to the head while we page, possibly past our offset: after the
        walk, re-read the head page by page until a page brings no conversation not already read."""
        fetch = self._fetcher("/conversations", "/v1/conversations")
        rows, count = self._collect(OffsetPaging().pages(fetch, {}))
        seen = {i for i in map(row_id, rows) if i is not None}
        offset = 0
        # One page read in one request: nothing could move between pages.
        while len(rows) >= PAGE_LIMIT and (count is None or offset < max(count, 1)):
            page = next(iter(OffsetPaging(start_offset=offset).pages(fetch, {})))
            new_ids = {i for i in map(row_id, page.rows) if i is not None} - seen
            rows.extend(page.rows)
            seen |= new_ids
            count = page.count if page.count is not None else count
            if not new_ids or len(page.rows) < PAGE_LIMIT:
                break
            offset += PAGE_LIMIT
        return self._settle(rows, count, CONVERSATION_VERSION_KEYS, "offset", [], fetch, {})

    def conversations_head(self, since: str, max_pages: int = CONVERSATIONS_HEAD_MAX_PAGES) -> ConversationsHead:
        """The conversations from the head of the list down to the first page that reaches back before ``since``.

        The list is ordered by ``messageSentOn`` descending [seen], so every conversation that sent a message
        at or after ``since`` (API clock, ``YYYY-MM-DD HH:MM:SS``) comes before any that last sent earlier:
        once a page's oldest row was last sent to before ``since``, no later page holds one. Not proved (and
        the caller must read the whole list): a page out of that order, a row without a readable
        ``messageSentOn``, or more than ``max_pages`` pages of recent senders. A conversation that moves to
        the head while the walk pages is behind it; its new ``messageSentOn`` is newer than anything the walk
        read, so the next walk from the newest stamp it read (less an overlap) finds it.
        """
        fetch = self._fetcher("/conversations", "/v1/conversations")
        rows: list[dict] = []
        count: int | None = None
        pages = 0
        for page in OffsetPaging().pages(fetch, {}):
            pages += 1
            rows.extend(page.rows)
            count = page.count if page.count is not None else count
            sent = [row.get("messageSentOn") if isinstance(row, Mapping) else None for row in page.rows]
            if not all(_readable_stamp(stamp) for stamp in sent):
                return ConversationsHead(newest_by_id(rows, CONVERSATION_VERSION_KEYS), count, pages, False,
                                         "a conversation on the head pages has no readable messageSentOn")
            stamps = [str(stamp) for stamp in sent]
            if stamps != sorted(stamps, reverse=True) or (len(rows) > len(page.rows) and stamps and
                                                         stamps[0] > _oldest_sent(rows[: -len(page.rows)])):
                return ConversationsHead(newest_by_id(rows, CONVERSATION_VERSION_KEYS), count, pages, False,
                                         "the conversation list is not in messageSentOn DESC order")
            if len(page.rows) < PAGE_LIMIT or (stamps and stamps[-1] < since):
                return ConversationsHead(newest_by_id(rows, CONVERSATION_VERSION_KEYS), count, pages, True)
            if pages >= max_pages:
                break
        return ConversationsHead(newest_by_id(rows, CONVERSATION_VERSION_KEYS), count, pages, False,
                                 f"{pages} pages of conversations sent to since {since}" if pages >= max_pages
                                 else "the walk ended without a page reaching back before the boundary")

    def messages(self, conversation_id: int, include_scheduled: bool = True) -> FetchResult:
        """Every message of one conversation. A 404 (the conversation is gone, or hidden from this token)
        raises :class:`HostawayClientError`: it is not a complete read of zero messages."""
        params = {"includeScheduledMessages": 1} if include_scheduled else {}
        fetch = self._fetcher(f"/conversations/{int(conversation_id)}/messages", "/v1/conversations/{id}/messages")
        rows, count = self._collect(OffsetPaging().pages(fetch, params))
        return self._settle(rows, count, ("updatedOn",), "offset", [], fetch, params)

    def messages_for_conversations(self, conversation_ids: Iterable[int],
                                   include_scheduled: bool = True) -> Iterator[tuple[int, FetchResult | HostawayError]]:
        """Messages of many conversations, fetched by ``message_workers`` threads through the shared pacing.

        Yields ``(conversation_id, result)`` in the order given; a conversation whose read failed (after
        the transport's retries) yields its :class:`HostawayError` instead, and the others go on. At most
        a few conversations are in flight or buffered at once, so memory follows the batch, not the account.
        """
        ids = list(dict.fromkeys(int(c) for c in conversation_ids))

        def read(cid: int) -> tuple[int, FetchResult | HostawayError]:
            try:
                return cid, self.messages(cid, include_scheduled)
            except HostawayError as error:
                return cid, error

        workers = max(1, self.message_workers)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="messages") as pool:
            pending: deque[Future[tuple[int, FetchResult | HostawayError]]] = deque()
            for cid in ids:
                pending.append(pool.submit(read, cid))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    # --- single objects (deletion confirmation) ----------------------------------------------------

    def lookup(self, resource: str, object_id: int, parent_id: int | None = None) -> dict | None:
        """The object as the API serves it now, or None when the API answers 404 (gone upstream).

        Any other failure raises: only a 404 proves a row is gone.
        """
        if resource == "messages":
            if parent_id is None:
                raise ValueError("a message lookup needs its conversation id")
            path = f"/conversations/{int(parent_id)}/messages/{int(object_id)}"
            endpoint = "/v1/conversations/{id}/messages/{messageId}"
        elif resource in ("listings", "reservations", "conversations"):
            path, endpoint = f"/{resource}/{int(object_id)}", f"/v1/{resource}/{{id}}"
        else:
            raise ValueError(f"unknown resource {resource!r}")
        try:
            body = self._get(path, endpoint)
        except HostawayClientError as error:
            if error.status == 404:
                return None
            raise
        result = body.get("result") if isinstance(body, dict) else None
        if not isinstance(result, dict) or row_id(result) != int(object_id):
            raise HostawayResponseError(f"expected the object {int(object_id)} in 'result'", endpoint=endpoint,
                                        account_id=self.account_id)
        return result

    def message(self, conversation_id: int, message_id: int) -> dict:
        found = self.lookup("messages", message_id, conversation_id)
        if found is None:
            raise HostawayClientError(f"message {int(message_id)} not found",
                                      endpoint="/v1/conversations/{id}/messages/{messageId}",
                                      account_id=self.account_id, status=404)
        return found

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
