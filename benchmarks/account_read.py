"""One account read in full through the pipeline's client: what every read scenario measures.

Reads listings, reservations (afterId cursor), conversations and every conversation's messages (in
parallel, ``message_workers`` threads), exactly what a first reconciliation asks of the API, and
reports completeness against the API's own ``count`` values.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Protocol

from hostaway_pipeline.hostaway.client import HostawayClient
from hostaway_pipeline.hostaway.errors import HostawayError


@dataclass
class AccountRead:
    account_id: int
    started: float  # time.time() of the first request, comparable across processes
    finished: float
    rows: dict[str, int] = field(default_factory=dict)
    missing: int = 0  # rows the API's count promised but the read did not return
    failed_conversations: int = 0  # conversations whose messages could not be read at all
    calls: int = 0  # as counted by the client (the stand-in's log is the judge)
    retries: int = 0
    throttled_429: int = 0
    rate_limit_wait_seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


class ClientProvider(Protocol):
    """Anything that hands out an account's client: the API resource, or a scenario's wrapper of it."""

    def client_for(self, account_id: int) -> HostawayClient: ...


def read_account(api: ClientProvider, account_id: int) -> AccountRead:
    client = api.client_for(account_id)
    started = time.time()
    listings = client.listings()
    reservations = client.reservations()
    conversations = client.conversations()
    messages = []
    failed_conversations = 0
    for _, read in client.messages_for_conversations(int(c["id"]) for c in conversations.objects):
        if isinstance(read, HostawayError):
            failed_conversations += 1
        else:
            messages.append(read)
    finished = time.time()
    missing = sum(max(0, (r.reported_count or 0) - len(r.objects)) for r in (listings, reservations, conversations))
    missing += sum(max(0, (r.reported_count or 0) - len(r.objects)) for r in messages)
    stats = client.stats
    return AccountRead(
        account_id, started, finished,
        rows={"listings": len(listings.objects), "reservations": len(reservations.objects),
              "conversations": len(conversations.objects),
              "messages": sum(len(r.objects) for r in messages)},
        missing=missing, failed_conversations=failed_conversations, calls=stats.calls, retries=stats.retries,
        throttled_429=stats.throttled_429,
        rate_limit_wait_seconds=round(stats.rate_limit_wait_seconds, 3),
    )
