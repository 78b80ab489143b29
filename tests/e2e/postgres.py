"""A throwaway PostgreSQL cluster on 127.0.0.1 for the e2e Prefect server: Debian's ``postgresql``.

The cluster lives in a temporary directory and dies with the session. PostgreSQL refuses to run
as root, so as root (CI, these machines) its programs run as the ``postgres`` user that Debian's
package creates; as root the package is installed through apt-get when it is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prefect_qiskit_jobs.emulator.server import free_port

DEBIAN_BINARIES = Path("/usr/lib/postgresql")
DATABASE = "prefect"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server programs here, and no way to install them."""


@dataclass(frozen=True)
class Postgres:
    port: int
    version: str
    log: Path

    @property
    def url(self) -> str:
        """What ``PREFECT_SERVER_DATABASE_CONNECTION_URL`` takes."""
        return self.url_of(DATABASE)

    def url_of(self, database: str) -> str:
        """The connection URL of another database of the cluster."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str) -> None:
        """One of PostgreSQL's client programs against this cluster, as its superuser."""
        command = [str(server_binaries() / tool), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        subprocess.run([*command, *args], check=True, capture_output=True)

    def create_database(self, name: str) -> str:
        """A new, empty database in the cluster (for a Prefect server of a test's own); its URL."""
        self._run("createdb", name)
        return self.url_of(name)

    def dump(self, database: str, into: Path) -> Path:
        """Everything ``database`` holds, as SQL in the file ``into`` (to scan what a server stored)."""
        self._run("pg_dump", "-f", str(into), database)
        return into


def server_binaries() -> Path:
    """The directory of ``initdb`` and ``pg_ctl`` (the newest Debian version), installing it as root."""

    def newest() -> Path | None:
        found = sorted(DEBIAN_BINARIES.glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
        return found[-1].parent if found else None

    if newest() is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "postgresql"],
            check=True,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    binaries = newest()
    if binaries is None:
        raise PostgresUnavailable(f"no PostgreSQL under {DEBIAN_BINARIES}: apt-get install postgresql")
    return binaries


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Postgres]:
    """initdb a cluster in a new directory, start it on a free loopback port, create the database.

    The directory is its own under the system's temporary directory, not pytest's (which only
    root may enter); cluster and directory are gone after.
    """
    binaries = server_binaries()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    with tempfile.TemporaryDirectory(prefix="prefect-e2e-postgres-") as name:
        yield from _cluster(binaries, Path(name), as_user)


def _cluster(binaries: Path, directory: Path, as_user: list[str]) -> Iterator[Postgres]:
    data, sockets = directory / "data", directory / "sockets"
    for path in (data, sockets):
        path.mkdir(parents=True)
    if as_user:
        shutil.chown(directory, "postgres")
        for path in (data, sockets):
            shutil.chown(path, "postgres")

    def run(*command: str) -> None:
        done = subprocess.run([*as_user, *command], capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}")

    run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    port = free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c max_connections=300 -c fsync=off"
    log = directory / "postgres.log"
    run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
    try:
        run(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", DATABASE)
        yield Postgres(port, binaries.parts[-2], log)
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
