"""Group commit for the receiver: writer threads commit the deliveries of concurrent requests together.

A request parses its body and hands the delivery to :meth:`GroupCommitter.commit`; a free writer thread
takes every delivery waiting (up to ``max_batch``) and commits them in one transaction
(:meth:`WebhookEventStore.store_each`), then answers each waiting request with its own outcome. While a
batch commits, the next gathers, so one commit (one WAL flush) serves many requests and the event loop
never waits on Postgres. A request is answered only after the commit that holds its event: durability is
the same as one transaction per delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from hostaway_pipeline.webhooks.event_store import StoredEvent, WebhookEventStore
from hostaway_pipeline.webhooks.events import ParsedDelivery, parse_delivery

logger = logging.getLogger(__name__)

# Bodies are at most 1 MiB and usually a few KiB: a full batch is a statement of a few MiB at worst.
MAX_BATCH_EVENTS = 200
# A usual delivery (a few KiB) is parsed on the event loop, in a fraction of a millisecond: in the writer
# thread every parse would hand the GIL back and forth (hashing releases it) and stretch each batch. A
# larger body is parsed in a worker thread so the loop never stalls on it.
PARSE_ON_LOOP_MAX_BYTES = 64 * 1024
# Writer threads, each with its own connection: while one waits for its commit (the WAL flush), the
# next batch is already being written by another. More than a few only split the waiting into smaller
# batches.
WRITERS = 2


@dataclass(frozen=True)
class _Waiting:
    delivery: ParsedDelivery
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[StoredEvent]


_STOP = object()


class GroupCommitter:
    """The writer threads (started on first use) and the queue of requests waiting for them."""

    def __init__(self, store: WebhookEventStore, max_batch: int = MAX_BATCH_EVENTS, writers: int = WRITERS) -> None:
        self.store = store
        self.max_batch = max_batch
        self.writers = writers
        self._queue: queue.SimpleQueue[_Waiting | object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    async def commit(self, body: bytes) -> StoredEvent:
        """Parse and commit ``body`` with whatever else is waiting; raises what storing it raised
        (``sqlalchemy.exc.SQLAlchemyError`` when it could not be stored)."""
        loop = asyncio.get_running_loop()
        if len(body) <= PARSE_ON_LOOP_MAX_BYTES:
            delivery = parse_delivery(body, self.store.redactor)
        else:
            delivery = await loop.run_in_executor(None, parse_delivery, body, self.store.redactor)
        waiting = _Waiting(delivery, loop, loop.create_future())
        with self._lock:
            if not self._threads:
                self._threads = [threading.Thread(target=self._write, name=f"webhook-group-commit-{number}",
                                                  daemon=True) for number in range(self.writers)]
                for thread in self._threads:
                    thread.start()
            self._queue.put(waiting)
        return await waiting.future

    def close(self, timeout_seconds: float = 30.0) -> None:
        """Commit what is queued, then stop the writer threads."""
        with self._lock:
            threads, self._threads = self._threads, []
            for _ in threads:
                self._queue.put(_STOP)
        for thread in threads:
            thread.join(timeout_seconds)

    def _write(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            batch: list[_Waiting] = []
            item: _Waiting | object = first
            while True:
                if item is _STOP:
                    stopping = True
                elif isinstance(item, _Waiting):
                    batch.append(item)
                if stopping or len(batch) >= self.max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)

    def _commit(self, batch: Sequence[_Waiting]) -> None:
        outcomes: Sequence[StoredEvent | BaseException]
        started = time.perf_counter()
        try:
            outcomes = self.store.store_each([waiting.delivery for waiting in batch])
        except Exception as error:  # never leave a request waiting: each gets the error (answered 5xx)
            logger.exception("committing a batch of %d webhook events failed", len(batch))
            outcomes = [error] * len(batch)
        stored = [outcome for outcome in outcomes if isinstance(outcome, StoredEvent)]
        if stored:
            new = [event.event_id for event in stored if not event.duplicate]
            logger.info("committed %d webhook events in %.0f ms (%d new%s, %d already stored)", len(stored),
                        (time.perf_counter() - started) * 1000, len(new),
                        f", ids {min(new)}-{max(new)}" if new else "", len(stored) - len(new))
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[StoredEvent],
                                                             StoredEvent | BaseException]]] = {}
        for waiting, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(waiting.loop, []).append((waiting.future, outcome))
        for loop, answers in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for these answers any more
                loop.call_soon_threadsafe(_answer, answers)


def _answer(answers: Sequence[tuple[asyncio.Future[StoredEvent], StoredEvent | BaseException]]) -> None:
    for future, outcome in answers:
        if future.done():  # the request was cancelled (its client went away)
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
