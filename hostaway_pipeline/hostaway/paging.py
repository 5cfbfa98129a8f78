"""Paging strategies, one small object per way Hostaway pages (dlt-style), chosen per endpoint.

* :class:`OffsetPaging`: ``limit``/``offset``; stops on a short or empty page or when ``offset``
  reaches ``count``. Used for listings, conversations and messages.
* :class:`AfterIdPaging`: the ``afterId`` cursor for reservations (id ascending, drift-proof); when a
  server ignores the cursor (rows not strictly after it) it raises :class:`CursorIgnored` so the caller
  falls back to offset paging plus a catch-up pass.

A strategy yields pages; it knows nothing of HTTP beyond the ``fetch(params) -> envelope`` it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

PAGE_LIMIT = 100

Envelope = Mapping[str, Any]
Fetch = Callable[[dict[str, Any]], Envelope]


class CursorIgnored(Exception):
    """The server answered an ``afterId`` request with rows that are not after the cursor."""


@dataclass
class Page:
    rows: list[dict]
    count: int | None


def _page(envelope: Envelope) -> Page:
    rows = envelope.get("result")
    if not isinstance(rows, list):
        raise ValueError(f"expected a list in 'result', got {type(rows).__name__}")
    count = envelope.get("count")
    return Page(rows=rows, count=int(count) if isinstance(count, int | str) and str(count).isdigit() else None)


@dataclass
class OffsetPaging:
    limit: int = PAGE_LIMIT
    start_offset: int = 0

    def pages(self, fetch: Fetch, params: Mapping[str, Any]) -> Iterator[Page]:
        offset = self.start_offset
        while True:
            page = _page(fetch({**params, "limit": self.limit, "offset": offset}))
            yield page
            offset += self.limit
            if len(page.rows) < self.limit or (page.count is not None and offset >= page.count):
                return


@dataclass
class AfterIdPaging:
    limit: int = PAGE_LIMIT

    def pages(self, fetch: Fetch, params: Mapping[str, Any]) -> Iterator[Page]:
        after_id = 0
        seen = 0
        while True:
            page = _page(fetch({**params, "limit": self.limit, "afterId": after_id}))
            ids = [int(row["id"]) for row in page.rows]
            if any(row_id <= after_id for row_id in ids) or ids != sorted(ids):
                raise CursorIgnored(f"rows not strictly after afterId={after_id}")
            yield page
            if not ids:
                return
            seen += len(ids)
            after_id = ids[-1]
            # A short page ends the walk once count says nothing is left; otherwise ask until empty.
            if len(ids) < self.limit and (page.count is None or seen >= page.count):
                return
