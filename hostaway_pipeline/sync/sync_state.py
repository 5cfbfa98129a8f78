"""What the last complete reads of an (account, resource) proved: ``hostaway.sync_state``, read and written.

A state row is written only in the transaction of the rows it vouches for, and only by a read proved
complete (green means right: a partial read never advances anything). It holds:

* ``watermark``: the upper bound of the last complete read on the **API's clock**: the newest change stamp
  (``updatedOn`` or ``latestActivityOn``) among the objects it read, capped at the newest ``updatedOn`` it
  read (a modification stamp, never in the future, while ``latestActivityOn`` may follow a message date).
  It only ever compares API values with API values, so skew between our clock and the API's costs nothing.
* The overlap rule: the next incremental read takes every change stamped at or after ``watermark -
  overlap`` (default one hour). The overlap covers a change stamped before the newest stamp we saw but
  committed after our read (a stamp is taken before its transaction commits) and disagreement between the
  API's own servers; re-reading the overlap costs no call until more than a page changed within it.
* ``last_full_read_at`` / ``last_incremental_read_at``: when those reads began (database clock), which is
  what the full-listing cadence is measured against; ``last_read_objects`` / ``last_api_count``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from hostaway_pipeline.storage.source_values import format_timestamp, to_timestamp
from hostaway_pipeline.storage.tables import sync_state

DEFAULT_OVERLAP = timedelta(hours=1)
CHANGE_STAMP_KEYS = ("updatedOn", "latestActivityOn")
MODIFICATION_STAMP_KEY = "updatedOn"


@dataclass(frozen=True)
class SyncState:
    account_id: int
    resource: str
    watermark: datetime | None = None
    last_full_read_at: datetime | None = None
    last_incremental_read_at: datetime | None = None
    last_read_kind: str | None = None
    last_read_objects: int | None = None
    last_api_count: int | None = None

    def window_start(self, overlap: timedelta = DEFAULT_OVERLAP) -> str | None:
        """``watermark - overlap`` as the API writes timestamps (UTC, no zone); None without a watermark."""
        return None if self.watermark is None else format_timestamp(self.watermark - overlap)

    def metadata(self) -> dict[str, Any]:
        """The state as materialization metadata (timestamps in ISO 8601, '' where never)."""
        def when(moment: datetime | None) -> str:
            return moment.isoformat() if moment is not None else ""

        return {"sync_watermark": when(self.watermark), "sync_last_full_read_at": when(self.last_full_read_at),
                "sync_last_incremental_read_at": when(self.last_incremental_read_at),
                "sync_last_read_kind": self.last_read_kind or "", "sync_last_read_objects": self.last_read_objects,
                "sync_last_api_count": self.last_api_count}


def _stamp(value: Any) -> datetime | None:
    try:
        return to_timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return None


def watermark_of(objects: Iterable[Any]) -> datetime | None:
    """The newest change stamp among ``objects``, capped at their newest ``updatedOn`` (module docstring);
    None when they carry no readable ``updatedOn``."""
    newest_change: datetime | None = None
    newest_modification: datetime | None = None
    for source in objects:
        if not isinstance(source, Mapping):
            continue
        for key in CHANGE_STAMP_KEYS:
            moment = _stamp(source.get(key))
            if moment is None:
                continue
            newest_change = moment if newest_change is None else max(newest_change, moment)
            if key == MODIFICATION_STAMP_KEY:
                newest_modification = moment if newest_modification is None else max(newest_modification, moment)
    if newest_change is None or newest_modification is None:
        return None
    return min(newest_change, newest_modification)


def load(engine_or_connection: Engine | Connection, account_id: int, resource: str) -> SyncState | None:
    query = sa.select(sync_state).where(sync_state.c.account_id == account_id, sync_state.c.resource == resource)
    if isinstance(engine_or_connection, Engine):
        with engine_or_connection.connect() as connection:
            row = connection.execute(query).mappings().first()
    else:
        row = engine_or_connection.execute(query).mappings().first()
    if row is None:
        return None
    return SyncState(**{key: row[key] for key in SyncState.__dataclass_fields__})


def load_all(engine: Engine) -> dict[tuple[int, str], SyncState]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(sync_state)).mappings().all()
    return {(row["account_id"], row["resource"]): SyncState(**{key: row[key] for key in SyncState.__dataclass_fields__})
            for row in rows}


def record_read(connection: Connection, account_id: int, resource: str, *, kind: str, read_began: datetime,
                objects_read: int, api_count: int | None, watermark: datetime | None) -> SyncState:
    """Record a complete read, in the caller's transaction (the one writing its rows).

    A full read sets the watermark it proved (None where the resource has none); an incremental read moves
    it forward only (the earlier proof still holds), and leaves ``last_full_read_at`` as it was.
    """
    if kind not in ("full", "incremental"):
        raise ValueError(f"unknown read kind {kind!r}")
    values: dict[str, Any] = {"account_id": account_id, "resource": resource, "watermark": watermark,
                              "last_read_kind": kind, "last_read_objects": objects_read, "last_api_count": api_count,
                              f"last_{kind}_read_at": read_began}
    statement = pg_insert(sync_state).values(values)
    incoming = statement.excluded
    updates: dict[str, Any] = {"last_read_kind": incoming.last_read_kind,
                               "last_read_objects": incoming.last_read_objects,
                               "last_api_count": incoming.last_api_count, "updated_at": sa.func.now(),
                               f"last_{kind}_read_at": incoming[f"last_{kind}_read_at"]}
    if kind == "full":
        updates["watermark"] = incoming.watermark
    else:
        updates["watermark"] = sa.func.greatest(sync_state.c.watermark, incoming.watermark)
    connection.execute(statement.on_conflict_do_update(index_elements=[sync_state.c.account_id,
                                                                       sync_state.c.resource], set_=updates))
    state = load(connection, account_id, resource)
    assert state is not None
    return state
