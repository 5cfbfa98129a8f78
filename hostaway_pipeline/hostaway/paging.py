"""Paging strategies, one small object per way Hostaway pages (dlt-style), chosen per endpoint.

* :class:`OffsetPaging`: ``limit``/``offset``; stops on a short or empty page or when ``offset``
  reaches ``count``. When ``count`` drops between pages, rows were deleted and later rows moved up:
  the page is read again from that many rows earlier, so none is skipped (some are read twice). Used for
  listings, conversations and messages (and as the reservations fallback).
* :class:`AfterIdPaging`: the ``afterId`` cursor for reservations. The first page is asked for without a
  cursor; every later one with the id of the last row of the page just received, never ``afterId=0``
  and never an older id (what the server does with a cursor it cannot place is undocumented). It
  assumes nothing about the order ids come in: the docs say the cursor follows the request's sort order,
  some servers use id order, old ones ignore it. When the server shows it is not following the cursor
  (it answers with the cursor row itself, or the previous page again) or the walk runs past a bound
  derived from ``count`` (the cursor row keeps moving and the walk keeps starting over), it raises
  :class:`CursorUnusable`; the caller then reads another way. Rows read twice are the caller's to
  deduplicate.

A strategy yields pages; it knows nothing of HTTP beyond the ``fetch(params) -> envelope`` it is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

PAGE_LIMIT = 100
MAX_BIGINT = 2**63 - 1  # ids are stored as bigint: a larger one is no usable id
# A walk that has not ended after this many times the pages ``count`` implies (plus a few) is going in
# circles: under the keyset reading a cursor row updated mid-walk sends the next page back to the head.
WALK_BOUND_FACTOR = 3
WALK_BOUND_EXTRA_PAGES = 3
# Used when the server gives no count: far more pages than any account has.
UNBOUNDED_WALK_PAGES = 10_000

Envelope = Mapping[str, Any]
Fetch = Callable[[dict[str, Any]], Envelope]


class CursorUnusable(Exception):
    """The server does not follow the ``afterId`` cursor (or the walk cannot end); read another way."""


@dataclass
class Page:
    rows: list[dict]
    count: int | None


def row_id(row: Any) -> int | None:
    """A row's integer ``id``, or None when it has none usable (the writer counts such rows)."""
    if not isinstance(row, Mapping):
        return None
    value = row.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        # ASCII digits only: str.isdigit() also accepts '²' (int() refuses it) and '١٢' (int() reads 12).
        value = int(text) if text.isascii() and text.isdigit() else None
    if isinstance(value, int) and 0 < value <= MAX_BIGINT:
        return value
    return None


def page_of(envelope: Envelope) -> Page:
    """The rows and ``count`` of one envelope (a ``count`` that is no integer reads as None)."""
    rows = envelope.get("result")
    if not isinstance(rows, list):
        raise ValueError(f"expected a list in 'result', got {type(rows).__name__}")
    count = envelope.get("count")
    if isinstance(count, bool):
        count = None
    parsed = count if isinstance(count, int) else int(count) if isinstance(count, str) and count.isdigit() else None
    return Page(rows=rows, count=parsed)


def walk_bound(count: int | None, limit: int) -> int:
    if count is None:
        return UNBOUNDED_WALK_PAGES
    return WALK_BOUND_FACTOR * math.ceil(max(count, 1) / limit) + WALK_BOUND_EXTRA_PAGES


@dataclass
class OffsetPaging:
    limit: int = PAGE_LIMIT
    start_offset: int = 0

    def pages(self, fetch: Fetch, params: Mapping[str, Any]) -> Iterator[Page]:
        offset = self.start_offset
        bound: int | None = None
        last_count: int | None = None
        pages_read = 0
        while True:
            page = page_of(fetch({**params, "limit": self.limit, "offset": offset}))
            pages_read += 1
            bound = bound or walk_bound(page.count, self.limit)
            if last_count is not None and page.count is not None and page.count < last_count and offset > 0:
                # Rows before this page were deleted since the last one: the rows that began this page moved
                # up into the previous one, unread. Read again from that many rows earlier, before handing
                # out this page: a caller that stops at a page (the conversations head walk) must not stop
                # on one that has a gap in front of it.
                offset = max(0, offset - (last_count - page.count))
                last_count = page.count
                continue
            yield page
            last_count = page.count if page.count is not None else last_count
            offset += self.limit
            if len(page.rows) < self.limit or (page.count is not None and offset >= page.count):
                return
            if pages_read >= bound:  # a server that ignores offset answers the same page forever
                return


@dataclass
class AfterIdPaging:
    limit: int = PAGE_LIMIT

    def pages(self, fetch: Fetch, params: Mapping[str, Any]) -> Iterator[Page]:
        page = page_of(fetch({**params, "limit": self.limit}))
        yield page
        bound = walk_bound(page.count, self.limit)
        previous_ids = [i for i in map(row_id, page.rows) if i is not None]
        pages_read = 1
        # A short page is the end of the list as the server saw it then; an empty one too.
        while len(page.rows) >= self.limit and previous_ids:
            if pages_read >= bound:
                raise CursorUnusable(f"the afterId walk did not end within {bound} pages")
            cursor = previous_ids[-1]
            page = page_of(fetch({**params, "limit": self.limit, "afterId": cursor}))
            ids = [i for i in map(row_id, page.rows) if i is not None]
            if cursor in ids or (ids and ids == previous_ids):
                raise CursorUnusable(f"the server answered afterId={cursor} with rows that do not follow it")
            pages_read += 1
            yield page
            previous_ids = ids
