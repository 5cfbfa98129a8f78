"""A separate OS process that sends calls to the stand-in through the shared Postgres limiter (tests only)."""

from __future__ import annotations

import sys

import requests

from hostaway_pipeline.hostaway.rate_limiter import RateLimiter
from hostaway_pipeline.settings import RateLimit
from hostaway_pipeline.storage.engine import get_engine


def main(database_url: str, base_url: str, per_ip: str, per_account: str, account_id: int, calls: int) -> None:
    limiter = RateLimiter(get_engine(database_url), RateLimit.parse(per_ip, "ip"),
                          RateLimit.parse(per_account, "account"), margin=0.05, egress_id="multiprocess-test")
    session = requests.Session()
    for _ in range(calls):
        limiter.acquire(account_id)
        # No token: the stand-in answers 403 but counts the call against the IP window like any other.
        session.get(f"{base_url}/listings", timeout=10)


if __name__ == "__main__":
    database_url, base_url, per_ip, per_account, account_id, calls = sys.argv[1:]
    main(database_url, base_url, per_ip, per_account, int(account_id), int(calls))
