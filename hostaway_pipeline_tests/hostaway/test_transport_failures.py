"""The transport on broken and hostile responses, over real sockets: bodies cut off mid-way, bodies that are
not JSON, and 429s whose ``Retry-After`` is huge, NaN, negative or a date in 2999.

A tiny raw-socket server plays the misbehaving peer (the stand-in cannot send headers and then drop the
connection, nor a ``Retry-After`` that is not a number); the malformed-JSON and 429 cases also use the
stand-in's own fault injection. Pacing goes through the real Postgres limiter.
"""

from __future__ import annotations

import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import requests
import sqlalchemy as sa

from hostaway_pipeline.hostaway.errors import HostawayResponseError, HostawayUnavailableError
from hostaway_pipeline.hostaway.rate_limiter import RateLimiter, account_bucket_key, ip_bucket_key
from hostaway_pipeline.hostaway.retry_policy import RetryPolicy, parse_retry_after
from hostaway_pipeline.hostaway.transport import CallStats, HostawayTransport
from hostaway_pipeline.settings import RateLimit
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.pipeline_harness import TIME_SCALE, build_harness

ACCOUNT = 43001
OTHER_ACCOUNT = 43002
GOOD_BODY = b'{"status": "success", "result": [{"id": 1}], "count": 1, "limit": 100, "offset": 0}'


def _cut_content_length(_: int) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
            b'{"status": "success", "result": [{"id": 1, "guestName": "Zo')


def _cut_chunked(_: int) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'400\r\n{"status": "success", "result": [')


def _bad_gzip(_: int) -> bytes:
    body = b"this is not gzip at all"
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def _good(_: int) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(GOOD_BODY)).encode() + b"\r\n\r\n" + GOOD_BODY)


class BrokenPeer:
    """Answers each connection with ``answers[i]`` (the last one repeats), then closes the socket."""

    def __init__(self, answers: list) -> None:
        self.answers = answers
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with connection:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    request += chunk
                answer = self.answers[min(self.connections, len(self.answers) - 1)]
                self.connections += 1
                connection.sendall(answer(self.connections))

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def transport_for(engine) -> Iterator:
    peers: list[BrokenPeer] = []

    def make(answers: list, max_attempts: int = 3, **limiter_options) -> tuple[HostawayTransport, BrokenPeer]:
        peer = BrokenPeer(answers)
        peers.append(peer)
        limiter = RateLimiter(engine, RateLimit(1000, 1.0), RateLimit(1000, 1.0), 0.0, f"broken-{peer.port}",
                              **limiter_options)
        transport = HostawayTransport(
            f"http://127.0.0.1:{peer.port}/v1", limiter,
            RetryPolicy(max_attempts=max_attempts, base_seconds=0.01, cap_seconds=0.02),
            timeout_seconds=(2.0, 2.0), session=requests.Session(),
        )
        return transport, peer

    yield make
    for peer in peers:
        peer.close()


def _get(transport: HostawayTransport, stats: CallStats):
    return transport.request("GET", "/listings", account_id=ACCOUNT, endpoint="/v1/listings", stats=stats,
                             tokens=None)


@pytest.mark.parametrize("broken", [_cut_content_length, _cut_chunked, _bad_gzip],
                         ids=["content-length-cut", "chunked-cut", "undecodable-gzip"])
def test_a_body_cut_off_or_undecodable_is_retried_like_a_reset(transport_for, broken):
    transport, peer = transport_for([broken, broken, _good])
    stats = CallStats()
    assert _get(transport, stats)["result"] == [{"id": 1}]
    assert peer.connections == 3
    assert stats.retries == 2 and stats.calls == 3


@pytest.mark.parametrize("broken", [_cut_content_length, _cut_chunked, _bad_gzip],
                         ids=["content-length-cut", "chunked-cut", "undecodable-gzip"])
def test_a_body_cut_off_every_time_ends_in_the_typed_error(transport_for, broken):
    transport, peer = transport_for([broken], max_attempts=3)
    with pytest.raises(HostawayUnavailableError) as raised:
        _get(transport, CallStats())
    assert peer.connections == 3
    message = str(raised.value)
    assert "/v1/listings" in message and str(ACCOUNT) in message and "gave up after 3 attempts" in message
    assert "Zo" not in message  # nothing of the partial body


@pytest.fixture
def simulator():
    with SimulatorServer(accounts={ACCOUNT: 30}, seed=9, time_scale=TIME_SCALE) as sim:
        yield sim


def test_malformed_json_names_endpoint_status_type_and_length_but_no_body_bytes(
        engine, database_url, simulator, pipeline_settings_env):
    harness = build_harness(database_url, simulator)
    harness.warehouse.accounts.add(ACCOUNT, simulator.client_secret(ACCOUNT))
    client = harness.api.client_for(ACCOUNT)
    client.listings()  # the token is minted and cached; the faulty call below is the listings page only
    simulator.add_fault(kind="malformed_json", endpoint="listings")
    with pytest.raises(HostawayResponseError) as raised:
        client.listings()
    message = str(raised.value)
    assert "not valid JSON" in message
    assert "/v1/listings" in message and str(ACCOUNT) in message and "HTTP 200" in message
    assert "application/json" in message and "bytes" in message
    listing_names = [listing["name"] for listing in simulator.truth(ACCOUNT)["listings"]]
    for fragment in ('{"status"', '"result"', "success", *listing_names):
        assert fragment not in message


# ---- hostile Retry-After ---------------------------------------------------------------------------------

FAR_FUTURE_DATE = "Fri, 01 Jan 2999 00:00:00 GMT"


@pytest.mark.parametrize(("header", "seconds"), [
    ("86400", 120.0), (FAR_FUTURE_DATE, 120.0), ("9" * 400, 120.0),  # capped at the maximum pause
    ("nan", None), ("NaN", None), ("-5", None), ("inf", None), ("1e9", None), ("+5", None), ("soon", None),
    ("Sat, 01 Jan 99999 00:00:00 GMT", None), ("", None), (None, None),  # ignored
    ("7", 7.0), (" 2.5 ", 2.5), ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),  # honoured; a past date means now
])
def test_retry_after_is_capped_at_the_maximum_pause_and_nonsense_is_ignored(header, seconds):
    assert parse_retry_after(header) == seconds
    assert parse_retry_after(FAR_FUTURE_DATE, now=datetime(2026, 1, 1, tzinfo=UTC), max_seconds=5.0) == 5.0


def test_a_nan_retry_after_never_reaches_the_backoff():
    policy = RetryPolicy(base_seconds=0.01, cap_seconds=0.02)
    assert 0.0 <= policy.backoff_seconds(1, math.nan) <= 0.02  # ignored: plain jittered backoff
    assert policy.backoff_seconds(1, 3.0) == 3.0


def _throttled(retry_after: str) -> Callable[[int], bytes]:
    body = b'{"status": "fail", "message": "You have exceeded the rate limits"}'

    def answer(_: int) -> bytes:
        return (b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\n"
                b"Retry-After: " + retry_after.encode() + b"\r\nContent-Length: " + str(len(body)).encode()
                + b"\r\n\r\n" + body)

    return answer


def _wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the condition"
        time.sleep(0.01)


@pytest.mark.parametrize(("retry_after", "pause"), [
    (FAR_FUTURE_DATE, 2.0), ("86400", 2.0),  # capped at the maximum pause, 2 s here
    ("-5", 1.0), ("nan", 1.0),  # ignored: a full window (1 s here)
], ids=["date-in-2999", "a-day", "negative", "nan"])
def test_a_hostile_retry_after_is_capped_or_ignored_and_never_stalls_other_accounts(transport_for, retry_after,
                                                                                    pause):
    """The 429 pauses the account for the capped (or default) time, the request then succeeds; meanwhile
    another account on the same egress IP gets its slot at once: the IP bucket was never paused."""
    transport, peer = transport_for([_throttled(retry_after), _good], max_pause_seconds=2.0)
    stats = CallStats()
    outcome: dict = {}

    def request() -> None:
        started = time.monotonic()
        try:
            outcome["body"] = _get(transport, stats)
        except BaseException as error:  # asserted below
            outcome["error"] = error
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=request)
    thread.start()
    _wait_for(lambda: (stats.throttled_429 == 1 and transport.limiter.paused_seconds(ACCOUNT) > 0)
              or not thread.is_alive())
    assert transport.limiter.acquire(OTHER_ACCOUNT) < pause / 2  # not held by the 429 pause
    assert transport.limiter.paused_seconds(None) == 0.0  # the egress IP's own bucket is not paused
    thread.join(timeout=60)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["body"]["result"] == [{"id": 1}] and peer.connections == 2
    assert pause - 0.05 <= outcome["seconds"] < 30.0  # waited the capped pause out, no more than it takes
    assert transport.limiter.counters.account_only_pauses == 1


@pytest.fixture
def two_account_simulator():
    with SimulatorServer(accounts={ACCOUNT: 30, OTHER_ACCOUNT: 30}, seed=9, time_scale=TIME_SCALE) as sim:
        yield sim


def _paused_for(engine, key: str) -> float | None:
    with engine.connect() as connection:
        value = connection.execute(sa.text(
            "SELECT extract(epoch FROM paused_until - clock_timestamp()) FROM hostaway.rate_limit_buckets "
            "WHERE bucket_key = :key"), {"key": key}).scalar()
    return None if value is None else float(value)


def test_a_day_long_retry_after_from_the_stand_in_pauses_one_account_for_the_maximum_only(
        engine, database_url, two_account_simulator, pipeline_settings_env):
    """The stand-in answers account A's listings with ``429, Retry-After: 86400``. A's pause is stored capped
    at the maximum (120 s); A's request ends at once with a clear error (its retry budget here is 3 s), not
    after a day; account B, on the same egress IP, reads on without waiting."""
    simulator = two_account_simulator
    harness = build_harness(database_url, simulator, max_retry_seconds=3.0)
    for account_id in (ACCOUNT, OTHER_ACCOUNT):
        harness.warehouse.accounts.add(account_id, simulator.client_secret(account_id))
    client_a, client_b = harness.api.client_for(ACCOUNT), harness.api.client_for(OTHER_ACCOUNT)
    client_a.listings()
    client_b.listings()  # both tokens are minted and usable
    simulator.add_fault(kind="status", status_code=429, retry_after=86400, endpoint="listings", account_id=ACCOUNT)
    started = time.monotonic()
    with pytest.raises(HostawayUnavailableError) as raised:
        client_a.listings()
    assert time.monotonic() - started < 30.0
    assert "/v1/listings" in str(raised.value) and str(ACCOUNT) in str(raised.value)
    limiter = harness.api.rate_limiter.limiter
    paused_for = _paused_for(engine, account_bucket_key(ACCOUNT))
    assert paused_for is not None and 100.0 < paused_for <= limiter.max_pause_seconds == 120.0
    assert _paused_for(engine, ip_bucket_key(limiter.egress_id)) is None
    started = time.monotonic()
    assert len(client_b.listings().objects) == len(simulator.truth(OTHER_ACCOUNT)["listings"])
    assert time.monotonic() - started < 10.0  # paced as usual (0.2 s windows), never the 120 s pause
    refused = [call for call in simulator.calls() if call["status"] == 429]
    assert [call["account_id"] for call in refused] == [ACCOUNT]


def test_a_nan_retry_after_from_the_stand_in_is_ignored_and_the_call_is_retried_after_a_window(
        engine, database_url, two_account_simulator, pipeline_settings_env):
    simulator = two_account_simulator
    harness = build_harness(database_url, simulator, max_retry_seconds=30.0)
    harness.warehouse.accounts.add(ACCOUNT, simulator.client_secret(ACCOUNT))
    client = harness.api.client_for(ACCOUNT)
    client.listings()
    simulator.add_fault(kind="status", status_code=429, retry_after=math.nan, endpoint="listings",
                        account_id=ACCOUNT)
    assert len(client.listings().objects) == len(simulator.truth(ACCOUNT)["listings"])
    assert client.stats.throttled_429 == 1 and client.stats.retries == 1
    limiter = harness.api.rate_limiter.limiter
    assert limiter.counters.account_only_pauses == 1
    assert _paused_for(engine, ip_bucket_key(limiter.egress_id)) is None


def test_a_request_whose_account_is_paused_past_its_retry_budget_fails_at_once_with_a_clear_error(transport_for):
    """The acquire's deadline is the request's retry budget: an account paused for 100 s (another process's
    429) cannot get a slot within a 5 s budget, so the request fails now, naming why, and sends nothing."""
    transport, peer = transport_for([_good])
    transport.retry_policy = RetryPolicy(max_attempts=3, max_total_seconds=5.0)
    transport.limiter.report_throttled(ACCOUNT, 100.0)
    started = time.monotonic()
    with pytest.raises(HostawayUnavailableError) as raised:
        _get(transport, CallStats())
    assert time.monotonic() - started < 5.0
    message = str(raised.value)
    assert "/v1/listings" in message and str(ACCOUNT) in message and "5 s retry budget" in message
    assert "paused by a 429" in message and re.search(r"the earliest is \d+\.\d s away", message)
    assert peer.connections == 0
