"""The one bulk writer every sync path uses to store Hostaway objects in the entity tables.

Per batch it: redacts, dedupes by id (last wins), upserts in one statement per chunk, writes content
only when the redacted object differs (``IS DISTINCT FROM`` on ``raw``, so ``changed_at`` means
something), and marks every row it sees as seen (``synced_at``) and alive (``deleted_at`` cleared).

Which version wins depends on who writes:

* a reconciliation read (``read_began`` given) is authoritative: it replaces the stored row, except a
  row another writer (a webhook apply, an overlapping run) wrote after this read began, which it
  replaces only with a strictly newer version (by the entity's first version column);
* a single event (a webhook, no ``read_began``) never replaces a newer row: it is skipped when its
  version is older than the stored one, or unknown while the stored one is known.

Skipped objects are counted as ``stale``. Every object first passes ``normalize``: a value that cannot
be stored costs that value (NULL in its column, cleaned in ``raw``, counted in ``values_quarantined``), a
row without a usable id is skipped (``rows_skipped``); both are logged once per write, never fatal. A
``DataError`` is restated (``WriteRejected``) without the row values it would print. It runs in the
caller's transaction when given a connection, else in one transaction of its own. Deletions are soft
(``deleted_at``) and explicit: the caller names the ids it proved gone (``soft_delete``), or a scope it
knows is gone whole.

Every statement says which ids it inserted, updated or soft-deleted in its own round trip (``RETURNING``);
the counts keep the first ``CHANGED_IDS_KEPT`` of each kind, so a run can show what it changed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from hostaway_pipeline.storage import normalize
from hostaway_pipeline.storage.redaction import Redactor
from hostaway_pipeline.storage.tables import ENTITY_TABLES, EntityTable

CHUNK_ROWS = 1000
# Ids of each kind of change a WriteCounts keeps (the counts stay exact): enough for a run's preview.
CHANGED_IDS_KEPT = 50
_ID_FIELDS = ("inserted_ids", "updated_ids", "soft_deleted_ids")

logger = logging.getLogger(__name__)


class WriteRejected(Exception):
    """The database refused a write; says which entity, account and statement, never the row values."""


@dataclass
class WriteCounts:
    """What a write did: new rows, changed rows, rows seen again unchanged, and objects older than stored.

    Also what normalization cost: values stored as NULL or cleaned (``values_quarantined``) and rows
    without a usable id (``rows_skipped``), with a few examples naming ids and fields, never values; and
    the first ``CHANGED_IDS_KEPT`` ids inserted, updated and soft-deleted, in the order written.
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    soft_deleted: int = 0
    values_quarantined: int = 0
    rows_skipped: int = 0
    quarantined_examples: tuple[str, ...] = ()
    skipped_examples: tuple[str, ...] = ()
    inserted_ids: tuple[int, ...] = ()
    updated_ids: tuple[int, ...] = ()
    soft_deleted_ids: tuple[int, ...] = ()

    def __add__(self, other: WriteCounts) -> WriteCounts:
        merged: dict[str, Any] = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, tuple):  # ids and examples: the first few, each once
                kept = CHANGED_IDS_KEPT if f.name in _ID_FIELDS else normalize.MAX_EXAMPLES
                merged[f.name] = tuple(dict.fromkeys((*mine, *theirs)))[:kept]
            else:
                merged[f.name] = mine + theirs
        return WriteCounts(**merged)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: list(value) if isinstance(value := getattr(self, f.name), tuple) else value
                for f in fields(self)}


class EntityWriter:
    """Upserts Hostaway objects into ``hostaway.<entity>`` tables; see the module docstring."""

    def __init__(self, engine: Engine, redactor: Redactor) -> None:
        self.engine = engine
        self.redactor = redactor

    def rows_for(self, entity: EntityTable, account_id: int,
                 objects: Iterable[Any]) -> tuple[list[dict], WriteCounts]:
        """Normalized, redacted, typed rows, deduplicated by id with the last occurrence winning; and what
        normalization cost (``values_quarantined``, ``rows_skipped`` and their examples)."""
        tally = normalize.Tally()
        by_id: dict[int, dict] = {}
        for position, source_object in enumerate(objects):
            object_id, why_not = normalize.usable_id(source_object)
            if object_id is None:
                tally.skip(position, why_not)
                continue
            # Cleaned before redaction: the redactor recurses, and the cleaned object is depth-bounded.
            redacted = self.redactor(normalize.clean_json(source_object, object_id, tally))
            row: dict[str, Any] = {"account_id": account_id, "id": object_id, "raw": redacted}
            row.update(normalize.typed_values(entity.source_columns, redacted, object_id, tally))
            by_id.pop(object_id, None)  # re-insert so dict order is last-occurrence order
            by_id[object_id] = row
        cost = WriteCounts(values_quarantined=tally.values_quarantined, rows_skipped=tally.rows_skipped,
                           quarantined_examples=tuple(tally.quarantined_examples),
                           skipped_examples=tuple(tally.skipped_examples))
        return list(by_id.values()), cost

    def write(
        self,
        entity: EntityTable | str,
        account_id: int,
        objects: Iterable[Any],
        connection: Connection | None = None,
        *,
        read_began: datetime | None = None,
    ) -> WriteCounts:
        """Upsert ``objects``; ``read_began`` (database clock) marks a reconciliation read (module docstring)."""
        entity = ENTITY_TABLES[entity] if isinstance(entity, str) else entity
        rows, cost = self.rows_for(entity, account_id, objects)
        if cost.values_quarantined or cost.rows_skipped:
            logger.warning(
                "%s of account %s: %d values quarantined (NULL in their column or cleaned in raw; e.g. %s), "
                "%d rows skipped (e.g. %s)", entity.name, account_id, cost.values_quarantined,
                "; ".join(cost.quarantined_examples) or "-", cost.rows_skipped,
                "; ".join(cost.skipped_examples) or "-")
        if connection is None:
            with self.engine.begin() as own_connection:
                return self._write_rows(entity, account_id, rows, own_connection, read_began) + cost
        return self._write_rows(entity, account_id, rows, connection, read_began) + cost

    def _write_rows(self, entity: EntityTable, account_id: int, rows: list[dict], connection: Connection,
                    read_began: datetime | None) -> WriteCounts:
        counts = WriteCounts()
        inserted_ids: list[int] = []
        updated_ids: list[int] = []
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows[start : start + CHUNK_ROWS]
            returned = self._upsert(entity, account_id, chunk, connection, read_began)
            for row in returned:
                if row.inserted:
                    counts.inserted += 1
                    if len(inserted_ids) < CHANGED_IDS_KEPT:
                        inserted_ids.append(row.id)
                elif row.changed:
                    counts.updated += 1
                    if len(updated_ids) < CHANGED_IDS_KEPT:
                        updated_ids.append(row.id)
                else:
                    counts.unchanged += 1
            counts.stale += len(chunk) - len(returned)
        counts.inserted_ids, counts.updated_ids = tuple(inserted_ids), tuple(updated_ids)
        return counts

    def _upsert(self, entity: EntityTable, account_id: int, chunk: list[dict], connection: Connection,
                read_began: datetime | None) -> Sequence[sa.Row]:
        """One upsert; a ``DataError`` (whose text prints the bound row values) is restated without them."""
        try:
            return connection.execute(self._upsert_statement(entity, chunk, read_began)).all()
        except sa.exc.DataError as error:
            database_error = error.orig
            rejected = WriteRejected(
                f"{entity.name} of account {account_id}: the database refused the upsert of {len(chunk)} rows: "
                f"{type(database_error).__name__} (SQLSTATE {getattr(database_error, 'pgcode', None)}); "
                "row values withheld")
        raise rejected  # outside the except block: no chained exception carries the values along

    @staticmethod
    def _upsert_statement(entity: EntityTable, rows: Sequence[dict], read_began: datetime | None) -> sa.Insert:
        table = entity.table
        statement = pg_insert(table).values(list(rows))
        incoming = statement.excluded
        content_changed = sa.or_(table.c.raw.is_distinct_from(incoming.raw), table.c.deleted_at.is_not(None))
        content_columns = ["raw", *(column.name for column in entity.source_columns)]
        assignments: dict[str, Any] = {
            name: sa.case((content_changed, incoming[name]), else_=table.c[name]) for name in content_columns
        }
        assignments["changed_at"] = sa.case((content_changed, sa.func.now()), else_=table.c.changed_at)
        assignments["synced_at"] = sa.func.now()
        assignments["deleted_at"] = None
        version = entity.version_columns[0]
        if read_began is None:  # an event: never over a newer row, nor a known version with an unknown one
            keep_stored = sa.or_(
                sa.func.coalesce(incoming[version] < table.c[version], sa.false()),
                sa.and_(incoming[version].is_(None), table.c[version].is_not(None)),
            )
        else:  # a reconciliation read: authoritative, except over what another writer wrote since it began
            keep_stored = sa.and_(
                table.c.synced_at >= read_began,
                sa.not_(sa.func.coalesce(incoming[version] > table.c[version], sa.false())),
            )
        return statement.on_conflict_do_update(
            index_elements=[table.c.account_id, table.c.id],
            set_=assignments,
            where=sa.not_(keep_stored),
        ).returning(
            table.c.id,
            sa.literal_column("xmax = 0").label("inserted"),
            (table.c.changed_at == sa.func.now()).label("changed"),
        )

    def database_now(self) -> datetime:
        """The database's clock (not this host's): when a read begins, for ``mark_missing_deleted``."""
        with self.engine.connect() as connection:
            return connection.execute(sa.select(sa.func.clock_timestamp())).scalar_one()

    def live_ids(self, entity: EntityTable | str, account_id: int, connection: Connection,
                 within: sa.ColumnElement[bool] | None = None,
                 unseen_since: datetime | None = None) -> set[int]:
        """Ids of the account's live rows (optionally only ``within``, only those not seen since a moment)."""
        entity = ENTITY_TABLES[entity] if isinstance(entity, str) else entity
        table = entity.table
        condition = sa.and_(table.c.account_id == account_id, table.c.deleted_at.is_(None))
        if within is not None:
            condition = sa.and_(condition, within)
        if unseen_since is not None:
            condition = sa.and_(condition, table.c.synced_at < unseen_since)
        return set(connection.execute(sa.select(table.c.id).where(condition)).scalars())

    def soft_delete(self, entity: EntityTable | str, account_id: int, ids: Iterable[int], connection: Connection,
                    unseen_since: datetime | None = None) -> WriteCounts:
        """Soft-delete these live rows (proved gone upstream), sparing any another writer saw since
        ``unseen_since``; counts what it deleted (``soft_deleted`` and ``soft_deleted_ids``)."""
        wanted = sorted(set(ids))
        if not wanted:
            return WriteCounts()
        entity = ENTITY_TABLES[entity] if isinstance(entity, str) else entity
        table = entity.table
        condition = sa.and_(
            table.c.account_id == account_id,
            table.c.deleted_at.is_(None),
            table.c.id == sa.func.any(sa.literal(wanted, sa.ARRAY(sa.BigInteger))),
        )
        if unseen_since is not None:
            condition = sa.and_(condition, table.c.synced_at < unseen_since)
        return _soft_delete_where(table, condition, connection)

    def mark_missing_deleted(
        self,
        entity: EntityTable | str,
        account_id: int,
        seen_ids: Iterable[int],
        connection: Connection,
        within: sa.ColumnElement[bool] | None = None,
        unseen_since: datetime | None = None,
    ) -> WriteCounts:
        """Soft-delete this account's live rows whose id is not in ``seen_ids`` (optionally only ``within``).

        ``unseen_since`` (the database's clock when the read began) spares rows another sync wrote after
        that moment: two overlapping syncs of one account never delete each other's newer rows.
        """
        entity = ENTITY_TABLES[entity] if isinstance(entity, str) else entity
        table = entity.table
        condition = sa.and_(
            table.c.account_id == account_id,
            table.c.deleted_at.is_(None),
            sa.not_(table.c.id == sa.func.any(sa.literal(sorted(set(seen_ids)), sa.ARRAY(sa.BigInteger)))),
        )
        if within is not None:
            condition = sa.and_(condition, within)
        if unseen_since is not None:
            condition = sa.and_(condition, table.c.synced_at < unseen_since)
        return _soft_delete_where(table, condition, connection)


def _soft_delete_where(table: sa.Table, condition: sa.ColumnElement[bool], connection: Connection) -> WriteCounts:
    """One UPDATE marking the rows deleted, returning their ids in the same round trip."""
    deleted_ids = connection.execute(
        sa.update(table).where(condition).values(deleted_at=sa.func.now(), changed_at=sa.func.now())
        .returning(table.c.id)
    ).scalars().all()
    return WriteCounts(soft_deleted=len(deleted_ids), soft_deleted_ids=tuple(sorted(deleted_ids)[:CHANGED_IDS_KEPT]))
