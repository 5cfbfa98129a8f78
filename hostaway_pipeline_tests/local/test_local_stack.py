"""The local stack's supervisor on real processes: ready checks, a child dying, and nothing left behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hostaway_pipeline import local_stack
from hostaway_pipeline.local_stack import Child, LocalStack, StackError

# A child that serves 200 on /ready, starts a grandchild that ignores SIGINT, and writes both pids.
SERVER = textwrap.dedent("""
    import http.server, os, subprocess, sys
    grandchild = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(600)"])
    open(sys.argv[2], "w").write(f"{os.getpid()} {grandchild.pid}")
    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/ready" else 404); self.end_headers()
        def log_message(self, *args): pass
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ready).serve_forever()
""")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is gone for our purpose.
    status = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] if Path(f"/proc/{pid}").exists() else "X"
    return status != "Z"


def _server_child(tmp_path: Path, name: str) -> tuple[Child, Path]:
    port = _free_port()
    pids = tmp_path / f"{name}.pids"
    return Child(name=name, argv=[sys.executable, "-c", SERVER, str(port), str(pids)],
                 ready_url=f"http://127.0.0.1:{port}/ready"), pids


def test_stop_leaves_no_process_even_a_grandchild_that_ignores_sigint(tmp_path: Path) -> None:
    first, first_pids = _server_child(tmp_path, "first")
    second, second_pids = _server_child(tmp_path, "second")
    with LocalStack([first, second], log_directory=tmp_path / "logs"):
        started = [int(pid) for path in (first_pids, second_pids) for pid in path.read_text().split()]
        assert all(_alive(pid) for pid in started)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in started if _alive(pid)]
    assert (tmp_path / "logs" / "first.log").exists()


def test_a_child_that_dies_fails_the_stack_naming_it(tmp_path: Path) -> None:
    survivor, survivor_pids = _server_child(tmp_path, "survivor")
    doomed = Child(name="doomed", argv=[sys.executable, "-c", "import time; time.sleep(1); raise SystemExit(3)"])
    with pytest.raises(StackError, match="doomed exited with status 3"), LocalStack([survivor, doomed]) as stack:
        stack.wait()
    survivor_pid = int(survivor_pids.read_text().split()[0])
    assert survivor.process is not None and survivor.process.poll() is not None
    assert not _alive(survivor_pid)


def test_a_child_that_never_answers_is_reported_and_the_started_ones_stopped(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hostaway_pipeline.local_stack.READY_TIMEOUT_SECONDS", 2.0)
    first, _ = _server_child(tmp_path, "first")
    silent = Child(name="silent", argv=[sys.executable, "-c", "import time; time.sleep(60)"],
                   ready_url=f"http://127.0.0.1:{_free_port()}/ready")
    with pytest.raises(StackError, match="silent did not answer"), LocalStack([first, silent]):
        pass
    assert first.process is not None and first.process.poll() is not None
    assert silent.process is not None and silent.process.poll() is not None


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_to_the_supervisor_returns_from_wait_and_stops_the_children(tmp_path: Path, sent) -> None:
    child, pids = _server_child(tmp_path, "child")
    with LocalStack([child]) as stack:
        def signal_soon() -> None:
            if time.monotonic() - began > 0.5:
                os.kill(os.getpid(), sent)
        began = time.monotonic()
        stack.wait(tick=signal_soon, interval=0.1)
    assert child.process is not None and child.process.poll() is not None
    assert signal.getsignal(sent) is not local_stack._raise_interrupt  # the handler before the stack is back


SUPERVISOR = textwrap.dedent("""
    import sys, time
    from hostaway_pipeline.local_stack import Child, LocalStack
    child = Child(name="sleeper", argv=[sys.executable, "-c", "import time; time.sleep(600)"])
    with LocalStack([child]):
        open(sys.argv[1], "w").write(str(child.process.pid))
        time.sleep(600)
""")


def test_children_die_with_a_supervisor_killed_outright(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(pid_file)])
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    child_pid = int(pid_file.read_text())
    assert _alive(child_pid)
    supervisor.kill()  # SIGKILL: no handler, no cleanup runs
    supervisor.wait()
    deadline = time.monotonic() + 10
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child_pid)
