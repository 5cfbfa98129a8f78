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

Skipped objects are counted as ``stale``. It runs in the caller's transaction when given a
connection, else in one transaction of its own. Deletions are soft (``deleted_at``) and explicit: the
caller names the ids it proved gone (``soft_delete``), or a scope it knows is gone whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from hostaway_pipeline.storage.redaction import Redactor
from hostaway_pipeline.storage.tables import ENTITY_TABLES, EntityTable

CHUNK_ROWS = 1000


@dataclass
class WriteCounts:
    """What a write did: new rows, changed rows, rows seen again unchanged, and objects older than stored."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    soft_deleted: int = 0

    def __add__(self, other: WriteCounts) -> WriteCounts:
        return WriteCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class EntityWriter:
    """Upserts Hostaway objects into ``hostaway.<entity>`` tables; see the module docstring."""

    def __init__(self, engine: Engine, redactor: Redactor) -> None:
        self.engine = engine
        self.redactor = redactor

    def rows_for(self, entity: EntityTable, account_id: int, objects: Iterable[Mapping[str, Any]]) -> list[dict]:
        """Redacted, typed rows, deduplicated by id with the last occurrence winning."""
        by_id: dict[int, dict] = {}
        for source_object in objects:
            if source_object.get("id") is None:
                raise ValueError(f"a {entity.name} object without an id cannot be stored: keys {sorted(source_object)}")
            redacted = self.redactor(dict(source_object))
            row: dict[str, Any] = {"account_id": account_id, "id": int(source_object["id"]), "raw": redacted}
            for column in entity.source_columns:
                try:
                    row[column.name] = column.convert(redacted.get(column.source_key))
                except (TypeError, ValueError) as error:
                    raise ValueError(
                        f"{entity.name} {row['id']} of account {account_id}: field {column.source_key}: {error}"
                    ) from None
            by_id.pop(row["id"], None)  # re-insert so dict order is last-occurrence order
            by_id[row["id"]] = row
        return list(by_id.values())

    def write(
        self,
        entity: EntityTable | str,
        account_id: int,
        objects: Iterable[Mapping[str, Any]],
        connection: Connection | None = None,
        *,
        read_began: datetime | None = None,
    ) -> WriteCounts:
        """Upsert ``objects``; ``read_began`` (database clock) marks a reconciliation read (module docstring)."""
        entity = ENTITY_TABLES[entity] if isinstance(entity, str) else entity
        rows = self.rows_for(entity, account_id, objects)
        if connection is None:
            with self.engine.begin() as own_connection:
                return self._write_rows(entity, rows, own_connection, read_began)
        return self._write_rows(entity, rows, connection, read_began)

    def _write_rows(self, entity: EntityTable, rows: list[dict], connection: Connection,
                    read_began: datetime | None) -> WriteCounts:
        counts = WriteCounts()
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows[start : start + CHUNK_ROWS]
            returned = connection.execute(self._upsert_statement(entity, chunk, read_began)).all()
            for row in returned:
                if row.inserted:
                    counts.inserted += 1
                elif row.changed:
                    counts.updated += 1
                else:
                    counts.unchanged += 1
            counts.stale += len(chunk) - len(returned)
        return counts

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
                    unseen_since: datetime | None = None) -> int:
        """Soft-delete these live rows (proved gone upstream), sparing any another writer saw since ``unseen_since``."""
        wanted = sorted(set(ids))
        if not wanted:
            return 0
        entity = ENTITY_TABLES[entity] if isinstance(entity, str) else entity
        table = entity.table
        condition = sa.and_(
            table.c.account_id == account_id,
            table.c.deleted_at.is_(None),
            table.c.id == sa.func.any(sa.literal(wanted, sa.ARRAY(sa.BigInteger))),
        )
        if unseen_since is not None:
            condition = sa.and_(condition, table.c.synced_at < unseen_since)
        result = connection.execute(
            sa.update(table).where(condition).values(deleted_at=sa.func.now(), changed_at=sa.func.now())
        )
        return result.rowcount

    def mark_missing_deleted(
        self,
        entity: EntityTable | str,
        account_id: int,
        seen_ids: Iterable[int],
        connection: Connection,
        within: sa.ColumnElement[bool] | None = None,
        unseen_since: datetime | None = None,
    ) -> int:
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
        result = connection.execute(
            sa.update(table).where(condition).values(deleted_at=sa.func.now(), changed_at=sa.func.now())
        )
        return result.rowcount
