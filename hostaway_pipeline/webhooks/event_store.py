"""``hostaway.webhook_events``: where the receiver commits each delivery before it answers, and its upkeep.

One transaction per delivery: an event whose account is not registered is stored as ``unknown_account``
(replayable once it is, see :func:`requeue_registered_accounts`); a redelivery (same dedupe key) is not
stored again, and answers with the stored event's id. Applied events are removed by :func:`prune_applied`.
Every call here blocks on the database: the receiver runs them in worker threads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

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
        with self.engine.begin() as connection:
            status, problem = delivery.status, delivery.problem
            if status == "pending" and not _registered(connection, delivery.account_id):
                status = "unknown_account"
                problem = f"account {delivery.account_id} is not registered (hostaway-pipeline accounts add)"
            event_id = connection.execute(
                pg_insert(events_table)
                .values(account_id=delivery.account_id, event=delivery.event, object_type=delivery.object_type,
                        object_id=delivery.object_id, object_updated_on=delivery.object_updated_on,
                        dedupe_key=delivery.dedupe_key, payload=delivery.payload, status=status, last_error=problem)
                .on_conflict_do_nothing(index_elements=[events_table.c.dedupe_key])
                .returning(events_table.c.event_id)
            ).scalar()
            if event_id is not None:
                return StoredEvent(event_id, status, duplicate=False)
            stored = connection.execute(
                sa.select(events_table.c.event_id, events_table.c.status)
                .where(events_table.c.dedupe_key == delivery.dedupe_key)
            ).one()
        return StoredEvent(stored.event_id, stored.status, duplicate=True)

    def check(self) -> None:
        """Raise unless the database answers (the receiver's health)."""
        with self.engine.connect() as connection:
            connection.execute(sa.select(1))


def _registered(connection: sa.Connection, account_id: int | None) -> bool:
    if account_id is None:
        return False
    return connection.execute(
        sa.select(sa.literal(True)).where(tables.accounts.c.account_id == account_id)
    ).scalar() is not None


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
