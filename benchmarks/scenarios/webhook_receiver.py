"""``webhook_receiver``: the receiver under concurrent senders, and whether every acknowledged event was kept.

The real receiver (``hostaway-pipeline webhooks serve``, its own OS process, a scratch database) gets
realistic deliveries: full reservation and message objects of two registered seed-size accounts (from the
stand-in), built by the stand-in's own ``webhook_emitter`` in all three payload shapes, each with its own
version (``updatedOn``), about 60 % ``reservation.updated`` and 40 % ``message.received``, and one in
twenty sent again shortly after (a duplicate). Sender processes, each driving keep-alive connections,
POST them as fast as the receiver answers.

Figures: acknowledged deliveries per second over the wall time of the sending (duplicates included: each
is a request the receiver must parse and commit); acknowledgement latency percentiles; ``lost`` =
acknowledged (2xx) events whose (account, event, object id, version) has no row in
``hostaway.webhook_events`` afterwards (the table is read from the database, not from the receiver).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.receiver_process import ReceiverProcess
from benchmarks.report import ScenarioResult, Target
from benchmarks.scenarios.options import BenchOptions
from benchmarks.stand_in import StandInProcess
from benchmarks.webhook_senders import Outcome, basic_authorization, send_concurrently
from benchmarks.wiring import fresh_database, server_url
from hostaway_pipeline.defs.resources import WarehouseResource
from hostaway_pipeline.simulator.webhook_emitter import PAYLOAD_SHAPES, Delivery, build_payload
from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.engine import get_engine

ACCOUNT_IDS = (40001, 40002)
LOGIN = "bench-hook"
PASSWORD = "bench-hook-Password-2f8a"  # a throwaway pair for a throwaway database
DUPLICATE_EVERY = 20  # one delivery in this many is sent again ...
DUPLICATE_LAG = 50  # ... this many deliveries after the original (often while it is still in flight)
FIRST_VERSION = datetime(2026, 6, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Size:
    events: int = 20_000  # distinct events; deliveries = events + events / DUPLICATE_EVERY
    processes: int = 2
    connections_per_process: int = 16


EventIdentity = tuple[int, str, int, datetime]  # account, event, object id, version


@dataclass(frozen=True)
class PreparedDeliveries:
    bodies: list[bytes]
    identities: list[EventIdentity]  # of each body, duplicates included


def prepare_deliveries(truths: dict[int, dict[str, Any]], events: int) -> PreparedDeliveries:
    """``events`` distinct deliveries (each object version its own) plus the duplicates, in sending order."""
    bodies: list[bytes] = []
    identities: list[EventIdentity] = []
    for number in range(events):
        account_id = ACCOUNT_IDS[number % len(ACCOUNT_IDS)]
        version = FIRST_VERSION + timedelta(seconds=number)
        if number % 5 < 3:
            event, kind, pool = "reservation.updated", "reservation", truths[account_id]["reservations"]
        else:
            event, kind, pool = "message.received", "conversationMessage", truths[account_id]["messages"]
        original = pool[(number * 7919) % len(pool)]
        data = {**original, "updatedOn": version.strftime("%Y-%m-%d %H:%M:%S")}
        payload = build_payload(Delivery(event, kind, data, original["id"]), account_id,
                                PAYLOAD_SHAPES[number % len(PAYLOAD_SHAPES)])
        bodies.append(json.dumps(payload).encode())
        identities.append((account_id, event, int(original["id"]), version))
        if number >= DUPLICATE_LAG and number % DUPLICATE_EVERY == 0:
            bodies.append(bodies[-DUPLICATE_LAG])
            identities.append(identities[-DUPLICATE_LAG])
    return PreparedDeliveries(bodies, identities)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def lost_events(identities: Sequence[EventIdentity], outcomes: Sequence[Outcome],
                stored: set[EventIdentity]) -> list[EventIdentity]:
    """Acknowledged (2xx) events with no stored row, each once."""
    acknowledged = {identities[o.index] for o in outcomes if o.status is not None and 200 <= o.status < 300}
    return sorted(acknowledged - stored)


def stored_events(database_url: str) -> tuple[set[EventIdentity], dict[str, int], int]:
    """Every stored event's identity, rows per status, and the row count."""
    table = tables.webhook_events
    with get_engine(database_url).connect() as connection:
        rows = connection.execute(sa.select(table.c.account_id, table.c.event, table.c.object_id,
                                            table.c.object_updated_on, table.c.status)).all()
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row.status] = statuses.get(row.status, 0) + 1
    return {(row.account_id, row.event, row.object_id, row.object_updated_on) for row in rows}, statuses, len(rows)


def machine_cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of the whole machine so far (Linux ``/proc/stat``), None elsewhere: whether the
    cores were shared with other work while the receiver was measured."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def run(options: BenchOptions, size: Size | None = None) -> ScenarioResult:
    size = size or Size()
    with fresh_database(server_url(options.database_server_url)) as database_url:
        with StandInProcess(dict.fromkeys(ACCOUNT_IDS, "seed"), seed=options.seed,
                            time_scale=options.time_scale) as stand_in:
            warehouse = WarehouseResource(database_url=database_url)
            for account_id in ACCOUNT_IDS:
                warehouse.accounts.add(account_id, stand_in.client_secret(account_id), name="benchmark")
            truths = {account_id: stand_in.truth(account_id) for account_id in ACCOUNT_IDS}
        prepared = prepare_deliveries(truths, size.events)
        with ReceiverProcess(database_url, LOGIN, PASSWORD) as receiver:
            cpu_before = machine_cpu_ticks()
            outcomes, began, ended = send_concurrently(
                receiver.host, receiver.port, receiver.path, basic_authorization(LOGIN, PASSWORD),
                prepared.bodies, processes=size.processes, connections_per_process=size.connections_per_process)
            cpu_after = machine_cpu_ticks()
        stored, statuses, stored_rows = stored_events(database_url)

    acknowledged = [o for o in outcomes if o.status is not None and 200 <= o.status < 300]
    latencies_ms = [o.seconds * 1000 for o in acknowledged] or [math.nan]
    seconds = ended - began
    lost = lost_events(prepared.identities, outcomes, stored)
    answers: dict[str, int] = {}
    for outcome in outcomes:
        answers[str(outcome.status)] = answers.get(str(outcome.status), 0) + 1
    connections = size.processes * size.connections_per_process
    result = ScenarioResult(
        "webhook_receiver", f"hostaway-pipeline webhooks serve in its own process; {size.processes} sender "
                            f"processes x {size.connections_per_process} keep-alive connections; {size.events} "
                            f"events + 1 in {DUPLICATE_EVERY} resent")
    result.figures = {
        "deliveries": len(prepared.bodies),
        "distinct_events": len(set(prepared.identities)),
        "acknowledged": len(acknowledged),
        "not_acknowledged": len(outcomes) - len(acknowledged),
        "seconds": round(seconds, 2),
        "events_per_second": round(len(acknowledged) / seconds, 1),
        "ack_latency_p50_ms": round(percentile(latencies_ms, 0.50), 1),
        "ack_latency_p95_ms": round(percentile(latencies_ms, 0.95), 1),
        "ack_latency_p99_ms": round(percentile(latencies_ms, 0.99), 1),
        "ack_latency_max_ms": round(max(latencies_ms), 1),
        "lost": len(lost),
        "stored_rows": stored_rows,
        "stored_not_pending": stored_rows - statuses.get("pending", 0),
    }
    result.targets = [
        Target("events_per_second", ">=", 1000),
        Target("lost", "==", 0),
        Target("not_acknowledged", "==", 0),
        # Every distinct event once, duplicates not again; all of registered accounts, so all pending.
        Target("stored_rows", "==", len(set(prepared.identities))),
        Target("stored_not_pending", "==", 0),
    ]
    busy = None if cpu_before is None or cpu_after is None else round(
        100 * (cpu_after[0] - cpu_before[0]) / max(1, cpu_after[1] - cpu_before[1]), 1)
    result.details = {"machine_cpu_busy_percent_while_sending": busy,
                      "answers_by_status": answers, "stored_by_status": statuses, "connections": connections,
                      "lost_examples": [[a, e, o, v.isoformat()] for a, e, o, v in lost[:20]]}
    return result
