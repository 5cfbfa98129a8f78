"""Concurrent webhook senders for the receiver benchmark: OS processes, each driving keep-alive sockets.

Each process runs one thread that keeps several raw HTTP/1.1 keep-alive connections busy through a
selector: one request in flight per connection, the next written as soon as the answer is read (a
closed connection is reopened). Requests are prepared bytes and answers are read by their
Content-Length, so a sender costs a few microseconds per request: the senders share the machine's cores
with the receiver, and ``http.client`` in threads cost several times more. Each request is timed from
its first byte written to the end of its answer. The processes share nothing but a start barrier, so
the measured clock starts when every connection is open.
"""

from __future__ import annotations

import base64
import multiprocessing
import selectors
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SEND_TIMEOUT_SECONDS = 60.0
STARTUP_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Outcome:
    """One POST: which prepared body, the HTTP status (None on a connection error), when and how long."""

    index: int
    status: int | None
    sent_at: float  # time.time() when the request was written
    seconds: float  # until the whole answer was read


class _Connection:
    """One keep-alive connection working through its share of requests, one in flight at a time."""

    def __init__(self, address: tuple[str, int], requests: Sequence[tuple[int, bytes]],
                 selector: selectors.BaseSelector) -> None:
        self.address = address
        self.requests = list(requests)
        self.selector = selector
        self.next = 0
        self.outcomes: list[Outcome] = []
        self.sock = self._open()
        self._buffer = b""
        self._sent_at = 0.0
        self._started = 0.0

    def _open(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=SEND_TIMEOUT_SECONDS)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.selector.register(sock, selectors.EVENT_READ, self)
        return sock

    def _close(self) -> None:
        self.selector.unregister(self.sock)
        self.sock.close()

    @property
    def done(self) -> bool:
        return self.next >= len(self.requests)

    def send_next(self) -> None:
        self._buffer = b""
        self._started = time.perf_counter()
        self._sent_at = time.time()
        try:
            self.sock.sendall(self.requests[self.next][1])
        except OSError:
            self._finish(None)

    def readable(self) -> None:
        """Read what arrived; once the answer is whole, record it and send the next request."""
        try:
            chunk = self.sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            self._finish(None)
            return
        self._buffer += chunk
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end >= 0 and len(self._buffer) - head_end - 4 >= _content_length(self._buffer[:head_end]):
            self._finish(int(self._buffer[9:12]))

    def _finish(self, status: int | None) -> None:
        self.outcomes.append(Outcome(self.requests[self.next][0], status, self._sent_at,
                                     time.perf_counter() - self._started))
        self.next += 1
        if status is None:  # the connection failed: what is left goes over a new one
            self._close()
            self.sock = self._open()
        if self.done:
            self._close()
        else:
            self.send_next()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _request_bytes(host: str, port: int, path: str, authorization: str, body: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {authorization}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


def _process_sends(host: str, port: int, path: str, authorization: str, shares: list[list[tuple[int, bytes]]],
                   start: Any, results: Any) -> None:
    try:
        selector = selectors.DefaultSelector()
        connections = [_Connection((host, port), [(index, _request_bytes(host, port, path, authorization, body))
                                                  for index, body in share], selector)
                       for share in shares if share]
        start.wait()
        for connection in connections:
            connection.send_next()
        while not all(connection.done for connection in connections):
            ready = selector.select(timeout=SEND_TIMEOUT_SECONDS)
            if not ready:
                raise TimeoutError(f"no answer from the receiver in {SEND_TIMEOUT_SECONDS:g} s")
            for key, _ in ready:
                key.data.readable()
        results.put(("ok", [(o.index, o.status, o.sent_at, o.seconds)
                            for connection in connections for o in connection.outcomes]))
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which fails the scenario
        results.put(("error", f"{type(error).__name__}: {error}"))


def basic_authorization(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode("ascii")


def send_concurrently(host: str, port: int, path: str, authorization: str, bodies: Sequence[bytes], *,
                      processes: int, connections_per_process: int) -> tuple[list[Outcome], float, float]:
    """POST every body once, dealt round-robin over ``processes x connections_per_process`` connections.

    Returns every outcome, and ``time.time()`` when the senders were released and when the last answered.
    """
    connections = processes * connections_per_process
    shares = [[(index, bodies[index]) for index in range(slot, len(bodies), connections)]
              for slot in range(connections)]
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes + 1)
    results = context.Queue()
    workers = [context.Process(target=_process_sends, daemon=True,
                               args=(host, port, path, authorization, shares[p::processes], start, results))
               for p in range(processes)]
    for worker in workers:
        worker.start()
    start.wait(timeout=STARTUP_TIMEOUT_SECONDS)
    began = time.time()
    reports = [results.get(timeout=3600) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    errors = [detail for status, detail in reports if status == "error"]
    if errors:
        raise RuntimeError("a sender process failed: " + "; ".join(errors))
    outcomes = [Outcome(*row) for _, rows in reports for row in rows]
    ended = max((o.sent_at + o.seconds for o in outcomes), default=began)
    return outcomes, began, ended
