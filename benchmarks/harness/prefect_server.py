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

from benchmarks.harness.code import CodeUnderTest

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
def prefect_server(home: Path, code: CodeUnderTest) -> Iterator[PrefectServer]:
    """Start a server for the block; it is stopped (and its log kept in ``home``) afterwards."""
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    server = PrefectServer(f"http://127.0.0.1:{port}/api", home)
    env = code.environment(server.environment())
    env.pop("PREFECT_API_URL")
    with (home / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not healthy(server.url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start; see {home / 'server.log'}")
            time.sleep(0.25)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
