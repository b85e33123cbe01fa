"""A PostgreSQL server of the test's own, to stop and start at will: the outage tests take it
down in the middle of a run, which the shared cluster of `.ci/postgres.sh` must never be
(other tests, and other people, use it at the same time).

It is the installed PostgreSQL 15 (the one `.ci/postgres.sh` starts), run by the `postgres`
user from a fresh data folder on a free port, with trust authentication on 127.0.0.1 only.
Where it cannot be made (no PostgreSQL 15, not root), the test fails under CI and skips on
a developer's machine, as the other PostgreSQL tests do (tests/unit/store/store_backends.py).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A PostgreSQL server in a temporary folder: `start`, `stop`, `url`, `remove`."""

    def __init__(self) -> None:
        problem = _cannot_run()
        if problem is not None:
            if os.environ.get("CI"):
                pytest.fail(problem)
            pytest.skip(problem)
        self.folder = Path(tempfile.mkdtemp(prefix="collapselab-pg-"))
        shutil.chown(self.folder, "postgres")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._as_postgres(str(BIN / "initdb"), "-D", str(self.folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        self._as_postgres(str(BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "lab")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/lab"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(str(BIN / "pg_ctl"), "-D", str(self.folder / "data"), "-o", options, "-l", str(self.folder / "log"), "-w", "start")

    def stop(self) -> None:
        """Stop at once, dropping every connection (as a crash or a restart for maintenance)."""
        self._as_postgres(str(BIN / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        subprocess.run(["su", "postgres", "-c", f"{BIN / 'pg_ctl'} -D {self.folder / 'data'} -m immediate -w stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _as_postgres(self, *argv: str) -> None:
        command = " ".join(f"'{a}'" for a in argv)
        done = subprocess.run(["su", "postgres", "-c", command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise AssertionError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")


def _cannot_run() -> str | None:
    if not (BIN / "pg_ctl").is_file():
        return f"no PostgreSQL 15 at {BIN} (install postgresql-15)"
    if os.geteuid() != 0:
        return "a private PostgreSQL server is started as the postgres user, which needs root"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres user"
    return None
