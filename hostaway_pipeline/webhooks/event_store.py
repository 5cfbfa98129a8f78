"""``hostaway.webhook_events``: where the receiver commits each delivery before it answers, and its upkeep.

Deliveries are committed in batches, one transaction each (:meth:`WebhookEventStore.store_batch`): an
event whose account is not registered is stored as ``unknown_account`` (replayable once it is, see
:func:`requeue_registered_accounts`); a redelivery (same dedupe key, in the table or earlier in the same
batch) is not stored again, and answers with the stored event's id. When a batch fails for something
other than the connection, :meth:`WebhookEventStore.store_each` stores its events one by one, so one bad
event fails alone. Applied events are removed by :func:`prune_applied`. Every call here blocks on the
database: the receiver runs them off its event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine

from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.redaction import Redactor
from hostaway_pipeline.webhooks.events import ParsedDelivery, parse_delivery

logger = logging.getLogger(__name__)

events_table = tables.webhook_events


@dataclass(frozen=True)
class StoredEvent:
    event_id: int
    status: str
    duplicate: bool


class WebhookEventStore:
    """Parses and commits deliveries. ``engine`` is asked for per use (a cached engine in production, see
    ``storage.engine.get_engine``), so a database that was down at start is simply tried again."""

    def __init__(self, engine: Callable[[], Engine], redactor: Redactor) -> None:
        self._engine = engine
        self.redactor = redactor

    @classmethod
    def on(cls, engine: Engine, redactor: Redactor) -> WebhookEventStore:
        return cls(lambda: engine, redactor)

    @property
    def engine(self) -> Engine:
        return self._engine()

    def receive(self, body: bytes) -> StoredEvent:
        """Parse ``body`` and commit it; raises ``sqlalchemy.exc.SQLAlchemyError`` when it could not be stored."""
        return self.store(parse_delivery(body, self.redactor))

    def store(self, delivery: ParsedDelivery) -> StoredEvent:
        return self.store_batch([delivery])[0]

    def store_batch(self, deliveries: Sequence[ParsedDelivery]) -> list[StoredEvent]:
        """Commit every delivery in one transaction; one result each, in order.

        Raises ``sqlalchemy.exc.SQLAlchemyError`` when the transaction fails: then none of them is stored.
        """
        if not deliveries:
            return []
        first_of_key: dict[str, int] = {}  # each dedupe key is inserted once, for its first delivery
        for index, delivery in enumerate(deliveries):
            first_of_key.setdefault(delivery.dedupe_key, index)
        with self.engine.begin() as connection:
            registered = _registered_among(connection, {deliveries[index].account_id
                                                        for index in first_of_key.values()})
            # In key order: concurrent batches holding some of the same keys then wait for each other in
            # the same order, never in a deadlock.
            rows = [_row(deliveries[first_of_key[key]], registered) for key in sorted(first_of_key)]
            inserted = {row.dedupe_key: row.event_id for row in connection.execute(_INSERT_NEW, rows)}
            already_stored = [key for key in first_of_key if key not in inserted]
            stored_before = {row.dedupe_key: row for row in connection.execute(
                sa.select(events_table.c.event_id, events_table.c.status, events_table.c.dedupe_key)
                .where(events_table.c.dedupe_key.in_(already_stored)))} if already_stored else {}
        status_of_new = {row["dedupe_key"]: row["status"] for row in rows}
        results: list[StoredEvent] = []
        for index, delivery in enumerate(deliveries):
            key = delivery.dedupe_key
            if key in inserted:
                results.append(StoredEvent(inserted[key], status_of_new[key], duplicate=first_of_key[key] != index))
            elif key in stored_before:
                results.append(StoredEvent(stored_before[key].event_id, stored_before[key].status, duplicate=True))
            else:  # skipped as a conflict, yet gone by the time it was read (pruned in between): retry later
                raise sa.exc.NoResultFound(f"webhook event {key[:40]}... conflicted but is no longer stored")
        return results

    def store_each(self, deliveries: Sequence[ParsedDelivery]) -> list[StoredEvent | sa.exc.SQLAlchemyError]:
        """Commit the deliveries, together when possible; per delivery its stored event or why it is not stored.

        A batch that fails because the database cannot be reached fails for all of them at once. Any other
        failure (a value Postgres refuses, a failed commit) is retried one delivery per transaction, so the
        others are still stored and only the cause fails.
        """
        try:
            return list(self.store_batch(deliveries))
        except sa.exc.SQLAlchemyError as error:
            if len(deliveries) == 1 or _connection_failed(error):
                return [error] * len(deliveries)
            logger.warning("a batch of %d webhook events failed (%s); storing them one by one",
                           len(deliveries), one_line(error))
        outcomes: list[StoredEvent | sa.exc.SQLAlchemyError] = []
        for delivery in deliveries:
            try:
                outcomes.append(self.store_batch([delivery])[0])
            except sa.exc.SQLAlchemyError as error:
                outcomes.append(error)
        return outcomes

    def check(self) -> None:
        """Raise unless the database answers (the receiver's health)."""
        with self.engine.connect() as connection:
            connection.execute(sa.select(1))


_INSERT_NEW = (pg_insert(events_table)
               .on_conflict_do_nothing(index_elements=[events_table.c.dedupe_key])
               .returning(events_table.c.event_id, events_table.c.dedupe_key))


def _registered_among(connection: sa.Connection, account_ids: set[int | None]) -> set[int]:
    wanted = sorted(account_id for account_id in account_ids if account_id is not None)
    if not wanted:
        return set()
    return set(connection.execute(
        sa.select(tables.accounts.c.account_id).where(tables.accounts.c.account_id.in_(wanted))
    ).scalars())


def _row(delivery: ParsedDelivery, registered: set[int]) -> dict[str, Any]:
    status, problem = delivery.status, delivery.problem
    if status == "pending" and delivery.account_id not in registered:
        status = "unknown_account"
        problem = f"account {delivery.account_id} is not registered (hostaway-pipeline accounts add)"
    return {"account_id": delivery.account_id, "event": delivery.event, "object_type": delivery.object_type,
            "object_id": delivery.object_id, "object_updated_on": delivery.object_updated_on,
            "dedupe_key": delivery.dedupe_key, "payload": delivery.payload, "status": status, "last_error": problem}


def _connection_failed(error: sa.exc.SQLAlchemyError) -> bool:
    """Whether the database could not be reached or the connection broke (nothing one event caused)."""
    return isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError) or bool(
        isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated)


def one_line(error: BaseException) -> str:
    """A database error's first line (its statement and parameters are never shown: hide_parameters)."""
    cause = getattr(error, "orig", None) or error
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def prune_applied(engine: Engine, older_than: timedelta) -> int:
    """Delete events applied more than ``older_than`` ago (database clock); returns how many."""
    with engine.begin() as connection:
        return connection.execute(
            sa.delete(events_table).where(
                events_table.c.status == "applied",
                events_table.c.applied_at < sa.func.now() - sa.literal(older_than, sa.Interval),
            )
        ).rowcount


def requeue_registered_accounts(engine: Engine) -> int:
    """Make ``unknown_account`` events of accounts registered since they arrived ``pending`` again."""
    with engine.begin() as connection:
        return connection.execute(
            sa.update(events_table)
            .where(events_table.c.status == "unknown_account",
                   events_table.c.account_id.in_(sa.select(tables.accounts.c.account_id)))
            .values(status="pending", last_error=None)
        ).rowcount
