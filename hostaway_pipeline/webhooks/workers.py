"""Worker processes for the receiver: one listening socket, several forked uvicorn servers accepting on it.

One Python process parses and answers on one core at most (the GIL); the receiver's work is mostly
Python, so a second process uses the second core. Workers are forked after the socket is bound and
before any database connection exists, each then running its own event loop, writer threads and
connection pool. The parent only supervises: SIGINT or SIGTERM makes it send SIGTERM to each worker
(uvicorn's graceful stop: requests in flight are answered first; a worker that already got the terminal's
SIGINT is not forced by it), and a worker that dies on its own stops the others and the parent with an
error, so whoever runs the receiver sees it. Workers die with the parent (Linux ``PR_SET_PDEATHSIG``),
so a parent killed outright leaves no worker behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
WAIT_POLL_SECONDS = 0.2


class WorkerDied(RuntimeError):
    """A receiver worker exited while nobody asked it to stop."""


def serve_in_workers(serve_one: Callable[[socket.socket], None], listener: socket.socket, workers: int) -> None:
    """Run ``serve_one(listener)`` in ``workers`` forked processes until SIGINT/SIGTERM; then wait for them."""
    parent = os.getpid()
    prctl = _prctl()
    pids: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                _die_with(parent, prctl)
                serve_one(listener)
                code = 0
            except BaseException:  # noqa: BLE001 - logged; the exit status tells the parent
                logger.exception("webhook receiver worker %d failed", os.getpid())
            finally:
                os._exit(code)
        pids.append(pid)
    listener.close()  # the workers hold it
    _supervise(pids)


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl  # type: ignore[no-any-return]


def _die_with(parent: int, prctl: Callable[..., int] | None) -> None:
    """Ask Linux to kill this process when its parent dies (elsewhere: the parent's stop is the only stop)."""
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _supervise(pids: list[int]) -> None:
    running = set(pids)
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    failed: list[str] = []
    try:
        while running:
            time.sleep(WAIT_POLL_SECONDS)  # (each worker is waited for by its pid: other children are not ours)
            for pid in list(running):
                reaped, status = os.waitpid(pid, os.WNOHANG)
                if reaped == 0:
                    continue
                running.discard(pid)
                if not stopping:
                    failed.append(f"worker {pid} exited with status {os.waitstatus_to_exitcode(status)}")
                    stop(signal.SIGTERM, None)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if failed:
        raise WorkerDied("the webhook receiver stopped: " + "; ".join(failed))
