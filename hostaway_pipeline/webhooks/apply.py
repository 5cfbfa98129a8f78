"""Applying stored webhook events to the entity tables: claim pending events in an id range, write, mark.

Each claim is one transaction: up to ``CLAIM_EVENTS`` pending events of the range, locked ``FOR UPDATE
SKIP LOCKED`` (two runs over overlapping ranges never apply one event twice), written per (entity,
account) in version order through the bulk writer's event mode (no ``read_began``: an older version never
replaces a newer row, whichever arrived first, and a reconciliation running meanwhile keeps what it may),
then marked. No API call: the payload carries the object. A message whose conversation is not stored yet
is kept; the next reconciliation stores the conversation.

Events end ``applied``, ``ignored`` (``last_error`` says why: the account is gone or disabled) or, after
``MAX_ATTEMPTS`` failed writes, ``failed`` (``last_error`` names the error, never row values); until then a
failed event stays ``pending`` with its ``attempts`` counted, for the sensor's sweep to retry. Only
``pending`` events are ever claimed, so applying the same range again is a no-op.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.entity_writer import EntityWriter, WriteCounts, WriteRejected
from hostaway_pipeline.webhooks.events import KNOWN_EVENTS
from hostaway_pipeline.webhooks.events import _data as delivery_data

logger = logging.getLogger(__name__)

events_table = tables.webhook_events
# Events claimed (and locked) per transaction: short transactions, one upsert statement per entity and account.
CLAIM_EVENTS = 200
# Failed writes of one event before it is marked failed for good (a reconciliation still fixes its row).
MAX_ATTEMPTS = 3


@dataclass
class TouchedAsset:
    """What one apply did to one (entity, account): event counts, their id range and the writer's counts."""

    entity: str
    account_id: int
    applied: int = 0
    failed: int = 0
    first_event_id: int | None = None
    last_event_id: int | None = None
    writes: WriteCounts = field(default_factory=WriteCounts)

    def saw(self, event_id: int) -> None:
        self.first_event_id = event_id if self.first_event_id is None else min(self.first_event_id, event_id)
        self.last_event_id = event_id if self.last_event_id is None else max(self.last_event_id, event_id)

    def metadata(self) -> dict[str, Any]:
        """For the webhook-sourced materialization; deliberately without ``reported_count`` (no API count)."""
        return {"events_applied": self.applied, "events_failed": self.failed,
                "first_event_id": self.first_event_id, "last_event_id": self.last_event_id,
                "rows_inserted": self.writes.inserted, "rows_updated": self.writes.updated,
                "rows_unchanged": self.writes.unchanged, "events_older_than_stored": self.writes.stale}


@dataclass
class ApplyOutcome:
    """An apply over ``[first_event_id, last_event_id]``: per-status event counts and the touched assets."""

    first_event_id: int
    last_event_id: int
    applied: int = 0
    ignored: int = 0
    retrying: int = 0
    failed: int = 0
    touched: dict[tuple[str, int], TouchedAsset] = field(default_factory=dict)

    def asset(self, entity: str, account_id: int) -> TouchedAsset:
        return self.touched.setdefault((entity, account_id), TouchedAsset(entity, account_id))


def apply_events(engine: Engine, writer: EntityWriter, first_event_id: int, last_event_id: int,
                 max_attempts: int = MAX_ATTEMPTS) -> ApplyOutcome:
    """Apply the pending events with ids in ``[first_event_id, last_event_id]``; see the module docstring."""
    outcome = ApplyOutcome(first_event_id, last_event_id)
    after = first_event_id - 1
    while True:
        with engine.begin() as connection:
            claimed = _claim(connection, after, last_event_id)
            if not claimed:
                return outcome
            _apply_claimed(connection, writer, claimed, outcome, max_attempts)
        after = claimed[-1].event_id  # each event is tried once per call: a failure waits for the next run


def _claim(connection: Connection, after: int, last_event_id: int) -> list[sa.Row]:
    return list(connection.execute(
        sa.select(events_table.c.event_id, events_table.c.account_id, events_table.c.event,
                  events_table.c.object_updated_on, events_table.c.attempts, events_table.c.payload)
        .where(events_table.c.status == "pending", events_table.c.event_id > after,
               events_table.c.event_id <= last_event_id)
        .order_by(events_table.c.event_id)
        .limit(CLAIM_EVENTS)
        .with_for_update(skip_locked=True)
    ).all())


def _apply_claimed(connection: Connection, writer: EntityWriter, claimed: list[sa.Row], outcome: ApplyOutcome,
                   max_attempts: int) -> None:
    enabled = _account_states(connection, {event.account_id for event in claimed})
    groups: dict[tuple[str, int], list[sa.Row]] = defaultdict(list)
    for event in claimed:
        state, entity = enabled.get(event.account_id), KNOWN_EVENTS.get(event.event or "")
        why = (f"account {event.account_id} is not registered any more" if state is None
               else f"account {event.account_id} is disabled (hostaway-pipeline accounts enable)" if not state
               else f"event {event.event!r} is not one this version applies" if entity is None else None)
        if why is not None or entity is None:
            _mark(connection, [event.event_id], "ignored", why)
            outcome.ignored += 1
            continue
        groups[(entity, event.account_id)].append(event)
    for (entity, account_id), events in groups.items():
        # Version order, so the writer's last-occurrence-wins dedupe keeps the newest version of each object.
        events.sort(key=lambda e: (e.object_updated_on is not None, e.object_updated_on, e.event_id))
        touched = outcome.asset(entity, account_id)
        for event in events:
            touched.saw(event.event_id)
        try:
            with connection.begin_nested():
                touched.writes += writer.write(entity, account_id, [delivery_data(e.payload) for e in events],
                                               connection)
        except (WriteRejected, sa.exc.SQLAlchemyError):
            for event in events:  # find which event the database refuses; the others still apply
                _apply_one(connection, writer, entity, account_id, event, touched, outcome, max_attempts)
            continue
        _mark(connection, [event.event_id for event in events], "applied", None)
        touched.applied += len(events)
        outcome.applied += len(events)


def _apply_one(connection: Connection, writer: EntityWriter, entity: str, account_id: int, event: sa.Row,
               touched: TouchedAsset, outcome: ApplyOutcome, max_attempts: int) -> None:
    try:
        with connection.begin_nested():
            touched.writes += writer.write(entity, account_id, [delivery_data(event.payload)], connection)
    except (WriteRejected, sa.exc.SQLAlchemyError) as error:
        attempts = event.attempts + 1
        final = attempts >= max_attempts
        connection.execute(sa.update(events_table).where(events_table.c.event_id == event.event_id).values(
            status="failed" if final else "pending", attempts=attempts, last_error=_describe(error, attempts)))
        logger.warning("webhook event %s (%s of account %s) failed to apply (attempt %d of %d): %s",
                       event.event_id, entity, account_id, attempts, max_attempts, _describe(error, attempts))
        touched.failed += 1
        if final:
            outcome.failed += 1
        else:
            outcome.retrying += 1
        return
    _mark(connection, [event.event_id], "applied", None)
    touched.applied += 1
    outcome.applied += 1


def _describe(error: Exception, attempts: int) -> str:
    """The error without row values (a driver's message can print them): ours whole, the database's by code."""
    if isinstance(error, WriteRejected):
        text = str(error)
    else:
        original = getattr(error, "orig", None)
        text = f"{type(original or error).__name__} (SQLSTATE {getattr(original, 'pgcode', None)}); row values withheld"
    return f"attempt {attempts}: {text}"


def _account_states(connection: Connection, account_ids: set[int]) -> dict[int, bool]:
    rows = connection.execute(
        sa.select(tables.accounts.c.account_id, tables.accounts.c.enabled)
        .where(tables.accounts.c.account_id.in_(sorted(account_ids)))
    ).all()
    return {row.account_id: row.enabled for row in rows}


def _mark(connection: Connection, event_ids: list[int], status: str, why: str | None) -> None:
    connection.execute(
        sa.update(events_table)
        .where(events_table.c.event_id.in_(event_ids))
        .values(status=status, last_error=why, attempts=events_table.c.attempts + 1,
                applied_at=sa.func.now() if status == "applied" else None)
    )


def pending_range(engine: Engine, from_event_id: int, limit: int,
                  received_before_seconds: float | None = None) -> tuple[int, int, int] | None:
    """First and last id (and count) of the first ``limit`` pending events with ids from ``from_event_id``;
    ``received_before_seconds`` keeps only events received at least that long ago (database clock)."""
    condition = sa.and_(events_table.c.status == "pending", events_table.c.event_id >= from_event_id)
    if received_before_seconds is not None:
        condition = sa.and_(condition, events_table.c.received_at
                            < sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, received_before_seconds))
    first = sa.select(events_table.c.event_id).where(condition).order_by(events_table.c.event_id).limit(limit)
    subquery = first.subquery()
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(sa.func.min(subquery.c.event_id), sa.func.max(subquery.c.event_id), sa.func.count())
        ).one()
    return None if row[0] is None else (row[0], row[1], row[2])
