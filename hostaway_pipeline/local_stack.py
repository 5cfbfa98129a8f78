"""The local stack: the processes ``hostaway-pipeline dev`` and ``demo`` run, started and stopped together.

Two children, each in its own process group so a terminal's Ctrl-C reaches only this supervisor, which
then stops them in order: the webhook receiver (``hostaway-pipeline webhooks serve``) and ``dagster dev``
(webserver, daemon and code server). They inherit the prepared environment (``environment.py``: the
database, ``DAGSTER_HOME``) plus the webhook credentials, passed in the environment, never in argv.

The supervisor waits until each child answers (the receiver's ``/healthz``, the webserver's
``/server_info``), and treats any child that exits on its own as a failure of the whole stack: it stops
the others and names the one that died. Stopping sends SIGINT (the graceful path of both programs), then
SIGTERM, then SIGKILL to each child's whole process group, so no grandchild (daemon, code server, run
worker) is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

STOP_GRACE_SECONDS = 20.0
GROUP_GRACE_SECONDS = 2.0
READY_TIMEOUT_SECONDS = 180.0
POLL_SECONDS = 0.5


class StackError(RuntimeError):
    """A child of the local stack failed to start or exited on its own: one line naming it."""


@dataclass
class Child:
    """One supervised process: a name for messages, its argv, extra environment, and a readiness URL."""

    name: str
    argv: list[str]
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)
    ready_url: str | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def executable(name: str) -> str:
    """A console script installed next to this interpreter (``dagster``, ``hostaway-pipeline``)."""
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        raise StackError(f"{name} is not installed next to {sys.executable} (make install)")
    return str(path)


class LocalStack:
    """Starts children in order, waits for each to be ready, stops them all (also on error) in reverse."""

    def __init__(self, children: list[Child], *, log_directory: Path | None = None) -> None:
        self.children = children
        self.log_directory = log_directory
        self._previous_handlers: dict[signal.Signals, Any] = {}

    def __enter__(self) -> LocalStack:
        # SIGTERM and SIGHUP (the terminal closed) stop the stack as Ctrl-C does, in every phase, so the
        # children are stopped and the caller's cleanup runs; restored on exit.
        self._previous_handlers = {sent: signal.signal(sent, _raise_interrupt) for sent in STOP_SIGNALS}
        try:
            for child in self.children:
                self._start(child)
                self._wait_ready(child)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            for sent, handler in self._previous_handlers.items():
                signal.signal(sent, handler)

    def _start(self, child: Child) -> None:
        output = None
        if self.log_directory is not None:
            self.log_directory.mkdir(parents=True, exist_ok=True)
            output = open(self.log_directory / f"{child.name}.log", "ab")  # noqa: SIM115 - owned by the child
        child.process = subprocess.Popen(
            child.argv, env={**os.environ, **child.environment}, start_new_session=True,
            preexec_fn=_die_with_parent, stdin=subprocess.DEVNULL, stdout=output,
            stderr=subprocess.STDOUT if output else None)
        if output is not None:
            output.close()  # the child holds its own descriptor

    def _wait_ready(self, child: Child) -> None:
        if child.ready_url is None:
            return
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self._raise_if_exited(child)
            try:
                if requests.get(child.ready_url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(POLL_SECONDS)
        raise StackError(f"{child.name} did not answer at {child.ready_url} within {READY_TIMEOUT_SECONDS:g} s"
                         f"{self._log_hint(child)}")

    def _raise_if_exited(self, child: Child) -> None:
        assert child.process is not None
        status = child.process.poll()
        if status is not None:
            raise StackError(f"{child.name} exited with status {status}{self._log_hint(child)}")

    def _log_hint(self, child: Child) -> str:
        return f" (its output: {self.log_directory / (child.name + '.log')})" if self.log_directory else ""

    def check(self) -> None:
        """Raise :class:`StackError` when any child has exited on its own."""
        for child in self.children:
            if child.process is not None:
                self._raise_if_exited(child)

    def wait(self, tick: Callable[[], None] | None = None, interval: float = POLL_SECONDS) -> None:
        """Block until Ctrl-C, SIGTERM or SIGHUP (returns) or a child dies (raises); ``tick`` runs between checks."""
        try:
            while True:
                self.check()
                if tick is not None:
                    tick()
                time.sleep(interval)
        except KeyboardInterrupt:
            return

    def stop(self) -> None:
        """Stop every child, last started first: SIGINT, then SIGTERM, then SIGKILL to its process group."""
        for child in reversed(self.children):
            process = child.process
            if process is None:
                continue
            for sent in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
                if process.poll() is not None and not _group_alive(process.pid):
                    break
                _signal_group(process.pid, sent)
                try:
                    process.wait(timeout=STOP_GRACE_SECONDS if sent != signal.SIGKILL else 5)
                except subprocess.TimeoutExpired:
                    continue
                _wait_group_gone(process.pid, GROUP_GRACE_SECONDS)  # the leader is gone: stragglers get less
            _signal_group(process.pid, signal.SIGKILL)  # stragglers in the group, if any


WORKSPACE_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def wait_for_code_location(ui_url: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Wait until the webserver has loaded every code location; raise naming one that failed to load.

    The webserver answers ``/server_info`` even when the definitions cannot be imported, and then no
    schedule, sensor or run works: the stack must not look up while its code is down.
    """
    deadline = time.monotonic() + timeout
    problem = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = requests.post(f"{ui_url}/graphql", json={"query": WORKSPACE_QUERY}, timeout=10).json()
            workspace = answer["data"]["workspaceOrError"]
            entries = workspace.get("locationEntries") or []
            if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                for entry in entries:
                    loaded = entry.get("locationOrLoadError") or {}
                    if loaded.get("__typename") == "PythonError":
                        first = (loaded.get("message") or "").strip().splitlines()[:1]
                        raise StackError(f"code location {entry['name']} failed to load: "
                                         f"{first[0] if first else 'see the UI'}")
                return
            problem = f"locations {[entry['name'] for entry in entries]} still loading"
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            problem = f"{type(error).__name__}: {error}"
        time.sleep(POLL_SECONDS)
    raise StackError(f"the Dagster webserver at {ui_url} did not load its code locations in {timeout:g} s ({problem})")


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when the supervisor dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _signal_group(pid: int, sent: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sent)


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _wait_group_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def receiver_child(host: str, port: int, credentials_environment: Mapping[str, str]) -> Child:
    return Child(
        name="webhook-receiver",
        argv=[sys.executable, "-m", "hostaway_pipeline", "webhooks", "serve", "--host", host, "--port", str(port)],
        environment=dict(credentials_environment),
        ready_url=f"http://{_client_host(host)}:{port}/healthz",
    )


DEFINITIONS_MODULE = "hostaway_pipeline.definitions"


def dagster_dev_child(host: str, port: int, environment: Mapping[str, str] | None = None) -> Child:
    """``dagster dev`` on the installed definitions module, so it works from any directory."""
    return Child(
        name="dagster-dev",
        argv=[executable("dagster"), "dev", "-m", DEFINITIONS_MODULE, "-h", host, "-p", str(port)],
        environment=dict(environment or {}),
        ready_url=f"http://{_client_host(host)}:{port}/server_info",
    )


def _client_host(host: str) -> str:
    """Where a local client reaches a server listening on ``host`` (a wildcard means this machine)."""
    return {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)


def local_stack_children(ui_host: str, ui_port: int, webhook_host: str, webhook_port: int,
                         credentials_environment: Mapping[str, str],
                         extra_environment: Mapping[str, str] | None = None) -> list[Child]:
    """The receiver first (events are stored from the start), then ``dagster dev``."""
    receiver = receiver_child(webhook_host, webhook_port, credentials_environment)
    receiver.environment = {**(extra_environment or {}), **receiver.environment}
    return [receiver, dagster_dev_child(ui_host, ui_port, extra_environment)]


def run_dev(ui_host: str, ui_port: int) -> None:
    """``hostaway-pipeline dev``: migrate, set the pool limit, run receiver + ``dagster dev`` until Ctrl-C."""
    import dagster as dg

    from hostaway_pipeline.defs.pools import ensure_api_pool_limit
    from hostaway_pipeline.environment import prepare_environment
    from hostaway_pipeline.storage.engine import get_engine
    from hostaway_pipeline.webhooks.config import credentials_environment, local_webhook_credentials
    from hostaway_pipeline.webhooks.receiver import WEBHOOK_PATH

    prepared = prepare_environment()
    settings = prepared.settings
    get_engine(prepared.database_url)  # migrate before anything starts
    ensure_api_pool_limit(dg.DagsterInstance.get(), settings.api_pool_limit)
    hint = _idle_demo_accounts_hint(prepared)
    if hint:
        print(hint, flush=True)
    credentials, generated = local_webhook_credentials(settings)
    children = local_stack_children(ui_host, ui_port, settings.webhook_host, settings.webhook_port,
                                    credentials_environment(credentials))
    print(f"starting the webhook receiver and dagster dev (logs in {settings.home / 'logs'}) ...", flush=True)
    with LocalStack(children, log_directory=settings.home / "logs") as stack:
        wait_for_code_location(f"http://{_client_host(ui_host)}:{ui_port}")
        print(f"Dagster UI:       http://{_client_host(ui_host)}:{ui_port}", flush=True)
        print(f"webhook receiver: http://{_client_host(settings.webhook_host)}:{settings.webhook_port}{WEBHOOK_PATH}"
              + (f" (login {credentials.login}; generated password kept encrypted in {settings.home})"
                 if generated else " (HOSTAWAY_WEBHOOK_LOGIN / HOSTAWAY_WEBHOOK_PASSWORD)"), flush=True)
        print("Ctrl-C stops everything.", flush=True)
        stack.wait()
    print("stopped the webhook receiver and dagster dev", flush=True)


def _idle_demo_accounts_hint(prepared) -> str | None:
    from hostaway_pipeline.demo import idle_demo_accounts_hint
    from hostaway_pipeline.storage.account_registry import AccountRegistry
    from hostaway_pipeline.storage.engine import get_engine
    from hostaway_pipeline.storage.secret_box import secret_box_from_settings

    registry = AccountRegistry(get_engine(prepared.database_url), secret_box_from_settings(prepared.settings))
    return idle_demo_accounts_hint(registry)
