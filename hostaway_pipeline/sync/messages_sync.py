"""Message sync for one account: fetch only the conversations whose markers moved.

Hostaway's messages endpoint has no date filter, so the naive sync costs one call per conversation (98%
of a full sync's calls). Every conversation carries markers that move when its messages change:
``messageSentOn``, ``messageReceivedOn``, a latest-message preview (which also covers the newest
scheduled message) and the embedded reservation's status (cancelling a reservation cancels its scheduled
messages, not all of which show in the preview). We remember the markers at which each conversation's
messages were last read in full (``hostaway.conversation_message_sync``) and re-read a conversation only
when they differ, or always with ``full_refresh``; plus a re-verification slice (see ``ReverifyPolicy``):
the least recently read conversations that can still change (reservation upcoming, in stay or departed
within ``active_after_departure_days``) so each is read in full at least once per ``active_days`` syncs,
and the others (departed long ago, cancelled) once per ``other_days``. That bounds how long a change the
markers cannot see stays unseen: an edit or deletion of an older message, a scheduled message that is
not the preview (created behind a newer one, or cancelled by a user). Such changes happen where guests
still come, so the re-read budget goes there. Conversations come from the warehouse (the
``conversations`` asset upstream).

Progress is reported through ``on_progress`` after every batch and at least every
``PROGRESS_EVERY_SECONDS``: lines starting with ``PROGRESS_PREFIX`` giving conversations done/total,
calls, rate-limit waits and the estimated time left.

Work is written in batches of conversations, one transaction each (messages and advanced markers), so
a crash loses at most a batch and memory follows the batch, not the account. A conversation whose read
failed (after retries), answered 404 (gone, or hidden from this token: not "zero messages"), or ended
short of its ``count`` keeps its old marker, so the next sync reads it again; the others go on, and the
step fails at the end when more than ``max_failed_conversations`` of them were not read in full (default
0: any; one tolerated is still reported, and still read again next sync). A stored message missing from a
conversation read in full is proved gone by id before it is soft-deleted (see ``deletions``); proved
deletions are applied at the end, in one transaction with the markers of their conversations, and only
when they stay within the mass-delete guard. Messages of conversations no longer live in the warehouse
(their deletion was proved by the conversations sync) are soft-deleted too. Never rows an overlapping
writer wrote after this read began.

Markers are computed from the six JSON values they need, selected in SQL and streamed, never from every
conversation's whole ``raw`` at once; what the sync keeps for the whole account is an id, a marker and a
timestamp per conversation, and the ids of messages proved gone.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from hostaway_pipeline.hostaway.client import FetchResult, HostawayClient
from hostaway_pipeline.hostaway.errors import HostawayError
from hostaway_pipeline.storage.entity_writer import EntityWriter, WriteCounts
from hostaway_pipeline.storage.sync_locks import DEFAULT_LOCK_WAIT_SECONDS, sync_lock
from hostaway_pipeline.storage.tables import conversation_message_sync, conversations, messages
from hostaway_pipeline.sync.deletions import DeletePolicy, prove_deletions
from hostaway_pipeline.sync.failures import MassDeleteRefused, ReadsFailed
from hostaway_pipeline.sync.full_sync import mass_delete_message, preview
from hostaway_pipeline.sync.outcome import SyncOutcome

# Markers cannot see every change (an older message edited or deleted, a scheduled message that is not
# the preview): each sync also re-reads the least recently read conversations. Active ones (that can
# still change) at least once per DEFAULT_REVERIFY_ACTIVE_DAYS daily syncs, the others once per
# DEFAULT_REVERIFY_OTHER_DAYS. At the seed-size account (787 conversations, 59 active) that is 5 + 2
# conversations a day, chosen so a quiet day stays within issue 12's 20 calls.
DEFAULT_REVERIFY_ACTIVE_DAYS = 14
DEFAULT_REVERIFY_OTHER_DAYS = 365
# A reservation counts as active until this many days after its departure (late guest messages, review
# requests and other post-stay scheduled messages), unless it is cancelled.
DEFAULT_ACTIVE_AFTER_DEPARTURE_DAYS = 7
# The uniform cycle of the seed design, kept for callers that ask for one cycle for every conversation.
DEFAULT_REVERIFY_DAYS = 30
# Conversations per write transaction: what a crash can lose, and what memory holds at once.
DEFAULT_BATCH_CONVERSATIONS = 100
# Conversations that may go unread (failed after retries, 404, short of their count) with the step still
# green; 0: any such conversation fails the step (each is read again next sync in any case).
DEFAULT_MAX_FAILED_CONVERSATIONS = 0
# Progress lines start with this (``hostaway-pipeline sync`` prints them) and come at least this often.
PROGRESS_PREFIX = "progress: "
PROGRESS_EVERY_SECONDS = 10.0
_MARKER_ROWS_PER_FETCH = 2000
_UNREAD_IDS_SHOWN = 20


@dataclass(frozen=True)
class ReverifyPolicy:
    """How often a conversation whose markers did not move is read in full anyway (module docstring).

    ``active_days`` / ``other_days``: every active / other conversation is read at least once per that many
    syncs (0: never). A conversation is active while its reservation is not cancelled and departs at most
    ``active_after_departure_days`` before "today", the date of the newest marker the account's
    conversations carry (the API's clock, so skew with ours costs nothing). ``uniform_days``, when set,
    replaces both with one cycle for every conversation.
    """

    active_days: int = DEFAULT_REVERIFY_ACTIVE_DAYS
    other_days: int = DEFAULT_REVERIFY_OTHER_DAYS
    active_after_departure_days: int = DEFAULT_ACTIVE_AFTER_DEPARTURE_DAYS
    uniform_days: int | None = None

    @classmethod
    def uniform(cls, days: int) -> ReverifyPolicy:
        """One cycle of ``days`` syncs for every conversation (0: no re-verification)."""
        return cls(uniform_days=max(0, days))

    @classmethod
    def off(cls) -> ReverifyPolicy:
        return cls.uniform(0)

    def cycles(self) -> dict[str, int]:
        """Class of conversation -> its cycle in syncs."""
        if self.uniform_days is not None:
            return {"all": self.uniform_days}
        return {"active": self.active_days, "other": self.other_days}

    def conversation_class(self, departure: Any, status: Any, today: date | None) -> str:
        if self.uniform_days is not None:
            return "all"
        if status == "cancelled":
            return "other"
        try:
            departs = date.fromisoformat(str(departure)[:10])
        except ValueError:
            return "active"  # no readable departure: cannot tell it is over, so treat it as able to change
        if today is None or departs >= today - timedelta(days=self.active_after_departure_days):
            return "active"
        return "other"

    def metadata(self) -> dict[str, Any]:
        if self.uniform_days is not None:
            return {"reverify_days": self.uniform_days}
        return {"reverify_active_days": self.active_days, "reverify_other_days": self.other_days,
                "active_after_departure_days": self.active_after_departure_days}


def conversation_marker(conversation: Mapping[str, Any]) -> str:
    """The fields that move whenever the conversation's message list changes."""
    return _encode_marker(_marker_fields(conversation))


def _marker_fields(conversation: Mapping[str, Any]) -> list[Any]:
    # A preview list that is not a list (hostile data) has no latest message; it used to raise here and
    # stop the account's whole sync. Every marker computed before is unchanged.
    previews = conversation.get("conversationMessages")
    latest = previews[0] if isinstance(previews, list) and previews and isinstance(previews[0], dict) else {}
    embedded = conversation.get("Reservation")
    reservation = embedded if isinstance(embedded, dict) else {}
    return [
        conversation.get("messageSentOn"),
        conversation.get("messageReceivedOn"),
        latest.get("id"),
        latest.get("status"),
        latest.get("updatedOn"),
        reservation.get("status"),
    ]


def _marker_columns(raw: sa.ColumnElement[Any]) -> list[sa.ColumnElement[Any]]:
    """``_marker_fields`` in SQL: the same six JSON values, so a sync never loads whole conversations.

    ``->`` answers NULL (None, as a missing key does) wherever the structure does not match: an integer
    index on anything but an array, a key on anything but an object. Values stay jsonb and decode as
    the whole ``raw`` would. (Not SQLAlchemy's ``raw[...]``: it renders jsonb subscripts, and ``[0]``
    there also reads an object's key ``"0"``.)
    """
    latest = _arrow(_arrow(raw, "conversationMessages"), 0)
    return [_arrow(raw, "messageSentOn"), _arrow(raw, "messageReceivedOn"), _arrow(latest, "id"),
            _arrow(latest, "status"), _arrow(latest, "updatedOn"), _arrow(_arrow(raw, "Reservation"), "status")]


def _arrow(value: sa.ColumnElement[Any], key: str | int) -> sa.ColumnElement[Any]:
    """``value -> key``: an object's field by a text key, an array's element by an integer index."""
    return value.op("->", return_type=JSONB)(sa.literal(key, sa.Integer if isinstance(key, int) else sa.Text))


def _encode_marker(fields: list[Any]) -> str:
    return json.dumps(fields, separators=(",", ":"))


def _live_markers(connection: Connection,
                  account_id: int) -> Iterator[tuple[int, str, str | None, Any, Any, Any, Any]]:
    """(conversation id, marker now, marker its messages were last read at or None, when, reservation
    departure, reservation status, newest of messageSentOn/messageReceivedOn) per live conversation, streamed
    from a server-side cursor: memory holds a few thousand small rows at most."""
    table, state = conversations.table, conversation_message_sync
    embedded = _arrow(table.c.raw, "Reservation")
    query = (
        sa.select(table.c.id, *_marker_columns(table.c.raw), state.c.marker, state.c.messages_synced_at,
                  _arrow(embedded, "departureDate"), _arrow(embedded, "status"))
        .select_from(table.outerjoin(state, sa.and_(state.c.account_id == table.c.account_id,
                                                    state.c.conversation_id == table.c.id)))
        .where(table.c.account_id == account_id, table.c.deleted_at.is_(None))
        .execution_options(yield_per=_MARKER_ROWS_PER_FETCH)
    )
    for row in connection.execute(query):
        stamps = [value for value in row[1:3] if isinstance(value, str)]
        yield row[0], _encode_marker(list(row[1:7])), row[7], row[8], row[9], row[10], max(stamps, default=None)


def _api_today(newest_stamp: str | None) -> date | None:
    try:
        return date.fromisoformat(newest_stamp[:10]) if newest_stamp else None
    except ValueError:
        return None


def reverification_slice(unmoved: Mapping[int, Any], live_conversations: int, reverify_days: int) -> set[int]:
    """The least recently read of the unmoved conversations, enough that a daily sync re-reads every
    conversation at least once per ``reverify_days`` runs (``unmoved`` maps id -> last read time).

    Round robin: each run reads ``ceil(live / reverify_days)`` of the least recently read, so ``reverify_days``
    runs read ``live`` of them, each the one unread longest; a conversation read meanwhile (it moved) only
    goes to the back of the queue. Apply it per class of conversation (``ReverifyPolicy``)."""
    if reverify_days <= 0 or not unmoved:
        return set()
    size = math.ceil(live_conversations / reverify_days)
    return set(sorted(unmoved, key=lambda cid: (unmoved[cid] is not None, unmoved[cid], cid))[:size])


@dataclass
class _Progress:
    """Progress lines for one messages step: every batch, and at least every ``PROGRESS_EVERY_SECONDS``."""

    client: HostawayClient
    total: int
    emit: Callable[[str], None] | None
    started: float = 0.0
    last: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.last = time.monotonic()

    def due(self) -> bool:
        return self.emit is not None and time.monotonic() - self.last >= PROGRESS_EVERY_SECONDS

    def report(self, done: int) -> None:
        if self.emit is None:
            return
        now = time.monotonic()
        self.last = now
        stats = self.client.stats
        elapsed = now - self.started
        left = f"about {elapsed / done * (self.total - done):.0f} s left" if done else "time left unknown yet"
        self.emit(f"{PROGRESS_PREFIX}messages of account {self.client.account_id}: {done}/{self.total} "
                  f"conversations read, {stats.calls} calls, {stats.throttled_429} answered 429, "
                  f"{stats.rate_limit_wait_seconds:.1f} s waited on the rate limits, {left}")


def sync_messages(client: HostawayClient, writer: EntityWriter, engine: Engine,
                  full_refresh: bool = False, reverify_days: int | None = None,
                  policy: DeletePolicy | None = None, batch_conversations: int = DEFAULT_BATCH_CONVERSATIONS,
                  lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
                  on_wait: Callable[[str], None] | None = None,
                  on_progress: Callable[[str], None] | None = None,
                  max_failed_conversations: int = DEFAULT_MAX_FAILED_CONVERSATIONS,
                  reverify: ReverifyPolicy | None = None) -> SyncOutcome:
    """Sync the messages of the account's conversations whose markers moved (see the module docstring).

    ``reverify`` says which unmoved conversations are read anyway (default ``ReverifyPolicy()``);
    ``reverify_days``, when given, is one cycle for every conversation instead (0: none).
    Raises :class:`ReadsFailed` when more than ``max_failed_conversations`` conversations could not be
    read in full, after writing everything that was.
    """
    if reverify_days is not None:
        reverify = ReverifyPolicy.uniform(reverify_days)
    with sync_lock(engine, client.account_id, "messages", lock_wait_seconds, on_wait):
        return _sync_messages(client, writer, engine, full_refresh, reverify or ReverifyPolicy(),
                              policy or DeletePolicy(), max(1, batch_conversations), on_progress,
                              max(0, max_failed_conversations))


def _sync_messages(client: HostawayClient, writer: EntityWriter, engine: Engine, full_refresh: bool,
                   reverify: ReverifyPolicy, policy: DeletePolicy, batch_conversations: int,
                   on_progress: Callable[[str], None] | None, max_failed_conversations: int) -> SyncOutcome:
    account_id = client.account_id
    state_table, message_table = conversation_message_sync, messages.table
    markers: dict[int, str] = {}
    moved: set[int] = set()
    unmoved: dict[int, Any] = {}  # conversation -> when its messages were last read
    standing: dict[int, tuple[Any, Any]] = {}  # conversation -> its reservation's departure and status
    newest_stamp: str | None = None
    with engine.connect() as connection:
        for cid, marker, stored_marker, synced_at, departure, status, stamp in _live_markers(connection, account_id):
            markers[cid] = marker
            standing[cid] = (departure, status)
            if stamp is not None and (newest_stamp is None or stamp > newest_stamp):
                newest_stamp = stamp
            if marker == stored_marker:
                unmoved[cid] = synced_at
            else:
                moved.add(cid)
        live_messages = connection.execute(
            sa.select(sa.func.count()).select_from(message_table).where(
                message_table.c.account_id == account_id, message_table.c.deleted_at.is_(None))
        ).scalar_one()
    live_conversations = sorted(markers)
    today = _api_today(newest_stamp)
    classes = {cid: reverify.conversation_class(*standing[cid], today) for cid in live_conversations}
    del standing
    reverified_by_class: dict[str, int] = {}
    reverified: set[int] = set()
    for name, cycle in reverify.cycles().items():
        members = sum(1 for cid in live_conversations if classes[cid] == name)
        candidates = {cid: read_at for cid, read_at in unmoved.items() if classes[cid] == name}
        chosen = set(candidates) if full_refresh else reverification_slice(candidates, members, cycle)
        reverified_by_class[name] = len(chosen)
        reverified |= chosen
    active_live = sum(1 for name in classes.values() if name == "active")
    del classes
    to_read = sorted(moved | reverified)
    markers = {cid: markers[cid] for cid in to_read}  # the markers to record: those read before the messages
    del unmoved
    read_began = writer.database_now()

    counts = WriteCounts()
    allowed = policy.allowed(live_messages)
    tally = {"fetched": 0, "reported": 0, "candidates": 0, "alive": 0, "unconfirmed": 0}
    not_found: list[int] = []
    failed: dict[int, str] = {}
    incomplete: list[int] = []
    gone: dict[int, list[int]] = {}  # conversation -> messages proved gone, applied at the end
    gone_counts: dict[int, int] = {}  # their API message counts, recorded with their markers
    preview_rows: list[dict] = []
    batch: list[tuple[int, FetchResult]] = []

    def flush() -> None:
        nonlocal counts
        if not batch:
            return
        objects = [{**o, "conversationId": o.get("conversationId") or cid}
                   for cid, result in batch for o in result.objects if isinstance(o, dict)]
        finished: list[tuple[int, int]] = []
        alive: list[dict] = []
        stored = _stored_live_messages(engine, account_id, [cid for cid, result in batch if result.complete],
                                       read_began)
        for cid, result in batch:
            if not result.complete:
                incomplete.append(cid)
                continue
            candidates = stored.get(cid, set()) - result.ids
            proof = prove_deletions(candidates, partial(_lookup_message, client, cid), live_messages,
                                    DeletePolicy(allow_mass_delete=True))  # the guard applies to the total, below
            tally["candidates"] += proof.candidates
            tally["alive"] += len(proof.alive)
            tally["unconfirmed"] += len(proof.unconfirmed)
            alive.extend({**o, "conversationId": o.get("conversationId") or cid} for o in proof.alive)
            if proof.gone:  # markers move with the deletions, at the end
                gone[cid] = proof.gone
                gone_counts[cid] = _api_message_count(result)
            elif proof.unconfirmed:
                incomplete.append(cid)  # keep the old marker: read it again next time
            else:
                finished.append((cid, _api_message_count(result)))
        with engine.begin() as connection:
            counts = counts + writer.write(messages, account_id, [*objects, *alive], connection, read_began=read_began)
            _advance_markers(connection, account_id, markers, finished)
        if len(preview_rows) < 5:
            preview_rows.extend(objects[: 5 - len(preview_rows)])
        batch.clear()

    progress = _Progress(client, len(to_read), on_progress)
    for done, (cid, fetched) in enumerate(client.messages_for_conversations(to_read), start=1):
        if progress.due():
            progress.report(done - 1)
        if isinstance(fetched, HostawayError):
            if fetched.status == 404:
                not_found.append(cid)
            else:
                failed[cid] = str(fetched)
            continue
        tally["fetched"] += len(fetched.ids)
        tally["reported"] += fetched.reported_count or 0
        batch.append((cid, fetched))
        if len(batch) >= batch_conversations:
            flush()
            progress.report(done)
    flush()

    proved_gone = sum(len(ids) for ids in gone.values())
    unread = sorted({*failed, *not_found, *incomplete})
    refused = allowed is not None and proved_gone > allowed
    with engine.begin() as connection:
        if not refused:
            counts += writer.soft_delete(
                messages, account_id, [mid for ids in gone.values() for mid in ids], connection,
                unseen_since=read_began)
            _advance_markers(connection, account_id, markers, list(gone_counts.items()))
        # Messages of conversations gone upstream (proved by the conversations sync).
        counts += writer.mark_missing_deleted(
            messages, account_id, [], connection,
            within=message_table.c.conversation_id.not_in(live_conversations or [-1]), unseen_since=read_began,
        )
        connection.execute(sa.delete(state_table).where(
            state_table.c.account_id == account_id, state_table.c.conversation_id.not_in(live_conversations or [-1]),
        ))
    outcome = SyncOutcome(
        "messages", account_id, tally["fetched"], tally["reported"], counts, client.stats,
        preview("messages", preview_rows),
        extra={"conversations_live": len(live_conversations), "conversations_read": len(to_read),
               "conversations_moved": len(moved), "conversations_reverified": len(reverified),
               **{f"conversations_reverified_{name}": count for name, count in reverified_by_class.items()},
               "conversations_active": active_live, "reverify_today": today.isoformat() if today else "",
               **reverify.metadata(),
               "conversations_skipped_unchanged": len(live_conversations) - len(to_read),
               "conversations_read_incomplete": len(incomplete), "conversations_not_found": len(not_found),
               "conversations_failed": len(failed), "max_failed_conversations": max_failed_conversations,
               "conversations_unread_ids": ", ".join(map(str, unread[:_UNREAD_IDS_SHOWN]))
               + (f" and {len(unread) - _UNREAD_IDS_SHOWN} more" if len(unread) > _UNREAD_IDS_SHOWN else ""),
               "delete_candidates": tally["candidates"],
               "delete_confirmed_gone": proved_gone, "delete_candidates_alive": tally["alive"],
               "delete_unconfirmed": tally["unconfirmed"]},
    )
    if refused:
        raise MassDeleteRefused(mass_delete_message(account_id, "messages", allowed, proved_gone, tally["candidates"],
                                                    live_messages), outcome)
    if unread:
        first = next(iter(failed.values()), None)
        summary = (
            f"account {account_id} messages: {len(failed) + len(not_found)} of {len(to_read)} conversations could "
            f"not be read ({len(not_found)} answered 404: gone or hidden from this token) and {len(incomplete)} "
            "were read incomplete; their messages are kept as they were and read again next sync"
            + (f"; first error: {first}" if first else ""))
        if len(unread) > max_failed_conversations:
            tolerance = f" (more than max_failed_conversations={max_failed_conversations})"
            raise ReadsFailed(summary + (tolerance if max_failed_conversations else ""), outcome)
        if on_progress is not None:
            on_progress(f"{summary} (tolerated: at most max_failed_conversations={max_failed_conversations})")
    return outcome


def _stored_live_messages(engine: Engine, account_id: int, conversation_ids: list[int],
                          unseen_since: datetime) -> dict[int, set[int]]:
    """Per conversation, the ids of its live stored messages no writer has seen since ``unseen_since``:
    one query for a whole batch (a message missing from its conversation's full read is a candidate)."""
    if not conversation_ids:
        return {}
    table = messages.table
    stored: dict[int, set[int]] = {}
    with engine.connect() as connection:
        for conversation_id, message_id in connection.execute(
            sa.select(table.c.conversation_id, table.c.id).where(
                table.c.account_id == account_id, table.c.deleted_at.is_(None), table.c.synced_at < unseen_since,
                table.c.conversation_id.in_(conversation_ids))
        ):
            stored.setdefault(conversation_id, set()).add(message_id)
    return stored


def _lookup_message(client: HostawayClient, conversation_id: int, message_id: int) -> dict | None:
    return client.lookup("messages", message_id, conversation_id)


def _api_message_count(result: FetchResult) -> int:
    return result.reported_count if result.reported_count is not None else len(result.ids)


def _advance_markers(connection: Connection, account_id: int, markers: Mapping[int, str],
                     finished: list[tuple[int, int]]) -> None:
    """Record that these conversations' messages were read in full at the markers they had before the read
    (``finished`` pairs each with the API's count of its messages)."""
    if not finished:
        return
    statement = pg_insert(conversation_message_sync).values([
        {"account_id": account_id, "conversation_id": cid, "marker": markers[cid], "api_message_count": count}
        for cid, count in finished
    ])
    connection.execute(statement.on_conflict_do_update(
        index_elements=[conversation_message_sync.c.account_id, conversation_message_sync.c.conversation_id],
        set_={"marker": statement.excluded.marker, "api_message_count": statement.excluded.api_message_count,
              "messages_synced_at": sa.func.now()},
    ))
