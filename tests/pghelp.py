"""A throwaway PostgreSQL server for tests: initdb into a temporary directory, started with
``pg_ctl`` on a unix socket (no TCP), trust authentication, stopped and deleted afterwards.

As root (CI), the server runs as the ``postgres`` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN_DIRS = (
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
)


def _bin(name: str) -> str | None:
    for d in BIN_DIRS:
        if Path(d, name).is_file():
            return str(Path(d, name))
    return shutil.which(name)


def missing() -> str | None:
    """Why no server can be started here, or None."""
    for tool in ("initdb", "pg_ctl"):
        if _bin(tool) is None:
            return f"PostgreSQL's {tool} is not installed (make system-deps installs postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg (the PostgreSQL driver) is not installed: pip install 'zenrec[serve]'"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to run the server as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_server(durable: bool = False) -> Iterator[str]:
    """Start a server; yield a ``postgresql://`` URL of its ``postgres`` database.

    Tests run it with ``fsync=off`` (a test's data need not survive a power cut); ``durable``
    keeps PostgreSQL's default ``fsync=on``, for benchmarks whose figures must include it.
    """
    root = Path(tempfile.mkdtemp(prefix="zenrec-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    user = os.environ.get("USER", "postgres")
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        for p in (root, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        root.chmod(0o755)
        prefix = ["runuser", "-u", "postgres", "--"]
        user = "postgres"
    port = _free_port()
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    assert initdb and pg_ctl
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", user, "--no-sync"],
        check=True,
        capture_output=True,
    )
    opts = (
        f"-c listen_addresses='' -c unix_socket_directories={sock} -p {port} "
        "-c max_connections=100" + ("" if durable else " -c fsync=off")
    )
    subprocess.run(
        [
            *prefix,
            pg_ctl,
            "-D",
            str(data),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "-l",
            str(root / "log"),
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://{user}@/postgres?host={sock}&port={port}"
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)
