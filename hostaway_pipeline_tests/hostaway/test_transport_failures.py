"""The transport on broken responses, over real sockets: bodies cut off mid-way and bodies that are not JSON.

A tiny raw-socket server plays the misbehaving peer (the stand-in cannot send headers and then drop the
connection); the malformed-JSON case uses the stand-in's own fault injection. Pacing goes through the
real Postgres limiter.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from hostaway_pipeline.hostaway.errors import HostawayResponseError, HostawayUnavailableError
from hostaway_pipeline.hostaway.rate_limiter import RateLimiter
from hostaway_pipeline.hostaway.retry_policy import RetryPolicy
from hostaway_pipeline.hostaway.transport import CallStats, HostawayTransport
from hostaway_pipeline.settings import RateLimit
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.pipeline_harness import TIME_SCALE, build_harness

ACCOUNT = 43001
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

    def make(answers: list, max_attempts: int = 3) -> tuple[HostawayTransport, BrokenPeer]:
        peer = BrokenPeer(answers)
        peers.append(peer)
        limiter = RateLimiter(engine, RateLimit(1000, 1.0), RateLimit(1000, 1.0), 0.0, f"broken-{peer.port}")
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
