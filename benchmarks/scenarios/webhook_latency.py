"""``webhook_latency``: from a webhook's 2xx to its row being visible in its table, with default settings.

``hostaway-pipeline dev`` runs as a user runs it (receiver, webserver, daemon with the
``hostaway_webhook_events`` sensor at its default interval, the packaged ``dagster.yaml``) on a scratch
database, with one registered account on the stand-in. After one warm-up event has gone all the way
through (the code location loaded, the sensor ticking), a ``reservation.updated`` or ``message.received``
event is POSTed every few seconds for a few minutes, each carrying a newer version of its object, so the
sensor's ticks and the run launches are sampled at every phase. A poller reads ``hostaway.reservations``
and ``hostaway.messages`` and notes when each event's version becomes visible.

Figures: latency p50/p95/max (2xx to visible, seconds), the apply runs started, and where the time went
per event (from Dagster's run records): 2xx to the run's creation (waiting for a sensor tick), creation
to start (the queue's dequeue and the run worker's launch), start to visible (the run itself).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import sqlalchemy as sa

from benchmarks.dev_stack import DevStackProcess
from benchmarks.report import ScenarioResult, Target
from benchmarks.scenarios.options import BenchOptions
from benchmarks.scenarios.webhook_receiver import percentile
from benchmarks.stand_in import StandInProcess
from benchmarks.wiring import fresh_database, server_url
from hostaway_pipeline.defs.resources import WarehouseResource
from hostaway_pipeline.defs.webhook_jobs import APPLY_JOB_NAME
from hostaway_pipeline.simulator.webhook_emitter import Delivery, build_payload
from hostaway_pipeline.storage.engine import get_engine
from hostaway_pipeline.storage.tables import ENTITY_TABLES

ACCOUNT_ID = 70001
ACCOUNT_SIZE = 40  # reservations; the stand-in adds their conversations and messages
LOGIN = "bench-latency-hook"
PASSWORD = "bench-latency-Password-7c1d"  # a throwaway pair for a throwaway stack
POLL_SECONDS = 0.25
TARGET_P95_SECONDS = 30.0
WARM_UP_DEADLINE_SECONDS = 300.0
DRAIN_DEADLINE_SECONDS = 180.0  # after the last event: any event not visible by then counts as never visible


@dataclass(frozen=True)
class Size:
    events: int = 72
    every_seconds: float = 2.5  # 72 events over three minutes: twelve sensor ticks at the default 15 s


@dataclass
class SentEvent:
    number: int
    event: str
    table: str  # reservations | messages
    object_id: int
    version: datetime
    acknowledged_at: float = 0.0  # time.time() when the 2xx arrived
    event_id: int | None = None  # the receiver's id for it
    visible_at: float | None = None
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def latency_seconds(self) -> float | None:
        return None if self.visible_at is None else self.visible_at - self.acknowledged_at


def _event_for(number: int, truth: dict[str, Any]) -> tuple[SentEvent, bytes]:
    """Event ``number``: reservations and messages in turn, each with a version newer than any before."""
    version = datetime(2026, 12, 1, tzinfo=UTC) + timedelta(minutes=number)
    if number % 2 == 0:
        pool, event, kind, table = truth["reservations"], "reservation.updated", "reservation", "reservations"
    else:
        pool = [message for message in truth["messages"] if message.get("isIncoming")] or truth["messages"]
        event, kind, table = "message.received", "conversationMessage", "messages"
    original = pool[(number // 2) % len(pool)]
    data = {**original, "updatedOn": version.strftime("%Y-%m-%d %H:%M:%S")}
    body = json.dumps(build_payload(Delivery(event, kind, data, original["id"]), ACCOUNT_ID, "payload_data"))
    return SentEvent(number, event, table, int(original["id"]), version), body.encode()


class VisibilityPoller:
    """Notes when each sent event's version (or a newer one) is visible in its table."""

    def __init__(self, database_url: str) -> None:
        self.engine = get_engine(database_url)
        self.waiting: list[SentEvent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="visibility-poller", daemon=True)

    def __enter__(self) -> VisibilityPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def watch(self, sent: SentEvent) -> None:
        with self._lock:
            self.waiting.append(sent)

    def outstanding(self) -> int:
        with self._lock:
            return len(self.waiting)

    def _poll(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            with self._lock:
                waiting = list(self.waiting)
            if not waiting:
                continue
            now = time.time()
            seen = self._visible(waiting)
            with self._lock:
                for sent in seen:
                    sent.visible_at = now
                self.waiting = [sent for sent in self.waiting if sent.visible_at is None]

    def _visible(self, waiting: Sequence[SentEvent]) -> list[SentEvent]:
        versions: dict[tuple[str, int], datetime] = {}
        with self.engine.connect() as connection:
            for name in ("reservations", "messages"):
                table = ENTITY_TABLES[name].table
                ids = sorted({sent.object_id for sent in waiting if sent.table == name})
                if ids:
                    rows = connection.execute(sa.select(table.c.id, table.c.updated_on).where(
                        table.c.account_id == ACCOUNT_ID, table.c.id.in_(ids))).all()
                    versions.update({(name, row.id): row.updated_on for row in rows if row.updated_on is not None})
        return [sent for sent in waiting
                if (stored := versions.get((sent.table, sent.object_id))) is not None and stored >= sent.version]


def _send(url: str, body: bytes, session: requests.Session) -> tuple[float, int]:
    response = session.post(url, data=body, auth=(LOGIN, PASSWORD), timeout=30,
                            headers={"Content-Type": "application/json"})
    acknowledged_at = time.time()
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"the receiver answered {response.status_code} to a benchmark event: {response.text[:200]}")
    return acknowledged_at, int(response.json()["eventId"])


@dataclass(frozen=True)
class ApplyRun:
    first_event_id: int
    last_event_id: int
    created_at: float
    started_at: float | None
    ended_at: float | None
    status: str


def apply_runs(database_url: str) -> list[ApplyRun]:
    """The apply runs in Dagster's run storage (the same database), with their event id ranges."""
    with get_engine(database_url).connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT r.status, EXTRACT(EPOCH FROM r.create_timestamp AT TIME ZONE 'UTC') AS created, r.start_time, "
            "r.end_time, f.value AS first_id, l.value AS last_id FROM runs r "
            "JOIN run_tags f ON f.run_id = r.run_id AND f.key = 'hostaway/first_event_id' "
            "JOIN run_tags l ON l.run_id = r.run_id AND l.key = 'hostaway/last_event_id' "
            "WHERE r.pipeline_name = :job ORDER BY r.id"), {"job": APPLY_JOB_NAME}).all()
    return [ApplyRun(int(row.first_id), int(row.last_id), float(row.created), row.start_time, row.end_time,
                     row.status) for row in rows]


def _phases(sent: SentEvent, runs: Sequence[ApplyRun]) -> dict[str, float]:
    """2xx -> run created -> run started -> visible, for the first run whose range holds the event."""
    run = next((run for run in runs if sent.event_id is not None
                and run.first_event_id <= sent.event_id <= run.last_event_id), None)
    if run is None or sent.visible_at is None or run.started_at is None:
        return {}
    return {"to_run_created": run.created_at - sent.acknowledged_at,
            "run_created_to_started": run.started_at - run.created_at,
            "run_started_to_visible": sent.visible_at - run.started_at}


def _summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"p50": round(percentile(values, 0.5), 2), "p95": round(percentile(values, 0.95), 2),
            "max": round(max(values), 2)}


def run(options: BenchOptions, size: Size | None = None) -> ScenarioResult:
    size = size or Size()
    with fresh_database(server_url(options.database_server_url)) as database_url, \
            StandInProcess({ACCOUNT_ID: ACCOUNT_SIZE}, seed=options.seed, time_scale=options.time_scale) as stand_in:
        WarehouseResource(database_url=database_url).accounts.add(
            ACCOUNT_ID, stand_in.client_secret(ACCOUNT_ID), name="benchmark")
        truth = stand_in.truth(ACCOUNT_ID)
        with DevStackProcess(database_url, stand_in.base_url, LOGIN, PASSWORD) as stack, \
                VisibilityPoller(database_url) as poller, requests.Session() as session:
            began = time.time()
            warm_up, body = _event_for(size.events, truth)  # a number of its own: a version of its own
            warm_up.acknowledged_at, warm_up.event_id = _send(stack.webhook_url, body, session)
            poller.watch(warm_up)
            while warm_up.visible_at is None:
                if time.time() - warm_up.acknowledged_at > WARM_UP_DEADLINE_SECONDS:
                    raise RuntimeError("the warm-up event never became visible; hostaway-pipeline dev's output "
                                       "ends:\n" + stack.log_path.read_text(errors="replace")[-4000:])
                time.sleep(POLL_SECONDS)
            sent_events: list[SentEvent] = []
            start = time.monotonic()
            for number in range(size.events):
                time.sleep(max(0.0, start + number * size.every_seconds - time.monotonic()))
                sent, body = _event_for(number, truth)
                sent.acknowledged_at, sent.event_id = _send(stack.webhook_url, body, session)
                poller.watch(sent)
                sent_events.append(sent)
            drain_deadline = time.monotonic() + DRAIN_DEADLINE_SECONDS
            while poller.outstanding() and time.monotonic() < drain_deadline:
                time.sleep(POLL_SECONDS)
            runs = apply_runs(database_url)
            ended = time.time()

    for sent in sent_events:
        sent.phases = _phases(sent, runs)
    latencies = [sent.latency_seconds for sent in sent_events if sent.latency_seconds is not None]
    never_visible = len(sent_events) - len(latencies)
    first_measured_id = min(sent.event_id for sent in sent_events if sent.event_id is not None)
    measured = [run for run in runs if run.last_event_id >= first_measured_id]
    creations = sorted(run.created_at for run in measured)
    result = ScenarioResult(
        "webhook_latency", f"hostaway-pipeline dev, default settings; {size.events} events, one every "
                           f"{size.every_seconds:g} s, after one warm-up event")
    result.figures = {
        "events": len(sent_events),
        "never_visible": never_visible,
        "latency_p50_seconds": round(percentile(latencies, 0.5), 2) if latencies else float("nan"),
        "latency_p95_seconds": round(percentile(latencies, 0.95), 2) if latencies else float("nan"),
        "latency_max_seconds": round(max(latencies), 2) if latencies else float("nan"),
        "apply_runs": len(measured),
        "apply_runs_failed": sum(1 for run in measured if run.status == "FAILURE"),
        "warm_up_seconds": round(warm_up.latency_seconds or 0.0, 2),
        "wall_seconds": round(ended - began, 1),
    }
    # A missing figure (nan) fails its target, as it should: an event that never showed is not fast.
    result.targets = [
        Target("latency_p95_seconds", "<=", TARGET_P95_SECONDS),
        Target("never_visible", "==", 0),
        Target("apply_runs_failed", "==", 0),
    ]
    result.details = {
        # The sensor's effective cadence: seconds between one apply run's creation and the next.
        "between_run_creations_seconds": _summary([later - earlier for earlier, later
                                                   in zip(creations, creations[1:], strict=False)]),
        "phases_seconds": {name: _summary([sent.phases[name] for sent in sent_events if name in sent.phases])
                           for name in ("to_run_created", "run_created_to_started", "run_started_to_visible")},
        "apply_runs": [{"events": f"{run.first_event_id}..{run.last_event_id}", "status": run.status,
                        "created_to_started_seconds": None if run.started_at is None
                        else round(run.started_at - run.created_at, 2),
                        "run_seconds": None if run.started_at is None or run.ended_at is None
                        else round(run.ended_at - run.started_at, 2)} for run in measured],
        "latencies_seconds": [None if sent.latency_seconds is None else round(sent.latency_seconds, 2)
                              for sent in sent_events],
    }
    return result
