"""End-to-end fixtures: a real ``prefect server start`` (SQLite), an emulator, and a serve process.

Everything runs as separate OS processes on 127.0.0.1, as in production: the Prefect server, the
emulator (long queue delay, so jobs stay Queued until released or cancelled), and the process
that serves the scenario flows (``flow.serve``), which launches each flow run as its own child.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prefect.client.orchestration import PrefectClient, get_client
from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

from prefect_qiskit_jobs.emulator import EmulatorConfig, RunningEmulator, start_emulator
from prefect_qiskit_jobs.emulator.server import free_port

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

pytestmark = pytest.mark.e2e


@dataclass
class PrefectServer:
    url: str
    home: Path
    process: subprocess.Popen[bytes]

    def environment(self) -> dict[str, str]:
        return {
            "PREFECT_API_URL": self.url,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",
        }


def _healthy(url: str) -> bool:
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            url + "/health", timeout=2
        ) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """``prefect server start`` on a free port with its own SQLite database."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env["PREFECT_UI_API_URL"] = f"http://127.0.0.1:{port}/api"  # the UI asks the API here, not :4200
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    server = PrefectServer(f"http://127.0.0.1:{port}/api", home, process)
    deadline = time.monotonic() + 180
    while not _healthy(server.url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"prefect server did not start; see {home / 'server.log'}")
        time.sleep(0.25)
    yield server
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(autouse=True)
def _talk_to_the_e2e_server(prefect_server: PrefectServer) -> Iterator[None]:
    """Every e2e test's Prefect client talks to the real server, whatever other suites set up."""
    with temporary_settings({PREFECT_API_URL: prefect_server.url, PREFECT_HOME: str(prefect_server.home)}):
        yield


@pytest.fixture(scope="session")
def iqp() -> Iterator[RunningEmulator]:
    """An emulator whose jobs stay Queued for ten minutes unless released or cancelled."""
    with start_emulator(EmulatorConfig(queue_delay=600, concurrency=1)) as emulator:
        yield emulator


@pytest.fixture
def iqp_env(iqp: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> RunningEmulator:
    for name, value in iqp.environment().items():
        monkeypatch.setenv(name, value)
    return iqp


def scenario_environment(server: PrefectServer, emulator: RunningEmulator) -> dict[str, str]:
    env = {**os.environ, **server.environment(), **emulator.environment()}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="session")
def served(prefect_server: PrefectServer, iqp: RunningEmulator) -> Iterator[subprocess.Popen[bytes]]:
    """A process serving the scenario flows' deployments, as ``flow.serve`` users run it."""
    log = (prefect_server.home / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.serve_scenarios"],
        cwd=ROOT,
        env=scenario_environment(prefect_server, iqp),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    names = ["e2e-awaited/e2e", "e2e-threaded/e2e", "e2e-unhooked/e2e", "e2e-detached/e2e"]
    with temporary_settings({PREFECT_API_URL: prefect_server.url, PREFECT_HOME: str(prefect_server.home)}):
        asyncio.run(_until_deployments(names, process))
    yield process
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


async def _until_deployments(names: list[str], process: subprocess.Popen[bytes]) -> None:
    async with get_client() as client:
        for name in names:

            async def exists(name: str = name) -> bool:
                if process.poll() is not None:
                    raise RuntimeError("the serve process exited")
                try:
                    await client.read_deployment_by_name(name)
                except Exception:
                    return False
                return True

            await eventually(exists, timeout=120, what=f"deployment {name}")


@pytest.fixture
async def prefect(prefect_server: PrefectServer) -> AsyncIterator[PrefectClient]:
    async with get_client() as client:
        yield client


async def eventually(check: Callable[[], Awaitable[T]], timeout: float, what: str, every: float = 0.25) -> T:
    """Await until ``check()`` returns something truthy: the state of another process we observe."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(every)


def jobs_of_run(emulator: RunningEmulator, run_id: Any) -> list[dict[str, Any]]:
    tag = f"prefect-flow-run:{run_id}"
    return [job for job in emulator.jobs() if tag in job["tags"]]
