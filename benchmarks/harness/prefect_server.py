"""A temporary Prefect API: ``prefect server start`` on a free port with its own home and SQLite file.

Scenarios that need flow runs or task runs get a real server, as a deployment would, rather
than Prefect's ephemeral one, which starts inside whichever process first needs it and would
be timed with it.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness.code import ROOT, CodeUnderTest

START_TIMEOUT = 180.0


@dataclass(frozen=True)
class PrefectServer:
    url: str
    home: Path

    def environment(self) -> dict[str, str]:
        """What a process needs to talk to this server (and keep its files in the server's home)."""
        return {
            "PREFECT_API_URL": self.url,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }


def healthy(url: str) -> bool:
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url + "/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _free_port() -> int:
    from prefect_qiskit_jobs.emulator.server import free_port

    return free_port()


@contextlib.contextmanager
def prefect_server(home: Path, code: CodeUnderTest, database: str | None = None) -> Iterator[PrefectServer]:
    """Start a server for the block; it is stopped (and its log kept in ``home``) afterwards.

    ``database``: a ``PREFECT_SERVER_DATABASE_CONNECTION_URL`` (default: SQLite in ``home``).
    """
    process = ServerProcess(home, code, database)
    try:
        yield process.start()
    finally:
        process.stop()


class ServerProcess:
    """One ``prefect server start``, stopped and started again on the same port and database."""

    def __init__(self, home: Path, code: CodeUnderTest, database: str | None = None) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.server = PrefectServer(f"http://127.0.0.1:{_free_port()}/api", home)
        self._code = code
        self._database = database
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrefectServer:
        """Start the server and wait until it answers; its log is appended to ``home/server.log``."""
        env = self._code.environment(self.server.environment())
        env.pop("PREFECT_API_URL")
        if self._database is not None:
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = self._database
        port = self.server.url.rsplit(":", 1)[1].split("/")[0]
        with (self.server.home / "server.log").open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", port],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not healthy(self.server.url):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prefect server did not start; see {self.server.home / 'server.log'}")
            time.sleep(0.25)
        return self.server

    def stop(self) -> None:
        if self._process is not None:
            stop(self._process)
            self._process = None


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def throwaway_postgres() -> Any:
    """The e2e tests' throwaway PostgreSQL cluster: a context manager giving its ``url``.

    Imported from the checkout (``tests/e2e/postgres.py``), not from the code under test.
    """
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    from tests.e2e.postgres import throwaway_cluster

    return throwaway_cluster()
