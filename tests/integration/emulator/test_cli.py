"""The ``prefect-qiskit-jobs emulator`` commands, run as a user runs them: in their own processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2
from qiskit_ibm_runtime.exceptions import IBMRuntimeError, RuntimeJobNotFound

from prefect_qiskit_jobs.emulator import RunningEmulator
from prefect_qiskit_jobs.emulator.catalog import Catalog
from prefect_qiskit_jobs.emulator.config import EmulatorConfig
from prefect_qiskit_jobs.emulator.server import free_port

from .conftest import SMALL_BACKEND, bell_for, point_environment_at

COMMAND = str(Path(sys.executable).parent / "prefect-qiskit-jobs")
CONNECT_SCRIPT = """
from qiskit_ibm_runtime import QiskitRuntimeService
service = QiskitRuntimeService()
print(service.active_instance())
print(",".join(sorted(backend.name for backend in service.backends())))
"""


def bare_environment() -> dict[str, str]:
    """A shell's environment with nothing that points a client anywhere."""
    return {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}


def test_env_prints_exports_that_connect_a_fresh_process(emulator: RunningEmulator) -> None:
    printed = subprocess.run(
        [COMMAND, "emulator", "env", "--url", emulator.url],
        env=bare_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert all(line.startswith("export ") for line in printed.strip().splitlines())

    # As a user would: eval "$(prefect-qiskit-jobs emulator env --url ...)", then run Python.
    # An unreachable IAM would show as the client's UserWarning, which -W turns into a failure.
    shell = 'eval "$1" && exec "$2" -W error::UserWarning -c "$3"'
    connected = subprocess.run(
        ["bash", "-c", shell, "sh", printed, sys.executable, CONNECT_SCRIPT],
        env=bare_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert connected.returncode == 0, connected.stderr
    instance, backends = connected.stdout.strip().splitlines()[-2:]
    assert instance == emulator.config.instance_crn
    assert backends == ",".join(sorted(device.name for device in Catalog(EmulatorConfig().backends)))
    assert emulator.stats()["routes"]["POST /iam/identity/token"] >= 1


@pytest.mark.parametrize(
    ("backends", "error"),
    [
        (["ibm_brisbane=atlantis"], "ships no fake backend 'atlantis'"),
        (["manila", "ibmq_manila=lima"], "two backends are served as 'ibmq_manila'"),
    ],
)
def test_serve_refuses_an_unknown_fake_and_a_name_served_twice(backends: list[str], error: str) -> None:
    refused = refused_serve(*(arg for backend in backends for arg in ("--backend", backend)))

    assert error in " ".join(refused.replace("│", " ").split())


def test_serve_refuses_a_non_loopback_host_without_allow_remote() -> None:
    refused = refused_serve("--host", "0.0.0.0")

    assert "0.0.0.0 is not a loopback address" in refused
    assert "--allow-remote" in refused


def test_serve_refuses_a_malformed_usage_limit() -> None:
    assert "is not a span" in refused_serve("--usage-limit", "ten minutes")


def refused_serve(*flags: str) -> str:
    """What ``emulator serve`` with ``flags`` prints as it refuses them (a usage error: exit code 2)."""
    refused = subprocess.run(
        [sys.executable, "-m", "prefect_qiskit_jobs", "emulator", "serve", *flags],
        env=bare_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2, refused.stderr
    return refused.stderr


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    """``emulator serve`` with flags, in the foreground of a child process, until the test ends."""
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "prefect_qiskit_jobs", "emulator", "serve", "--port", str(port)),
            *("--backend", "manila", "--backend", "nairobi", "--queue-delay", "3600"),
            *("--api-key", "cli-key", "--fault", "GET /jobs/*/metrics:rate_limit_no_header=1"),
            *("--result-retention", "10m"),
            *("--usage-limit", "10m", "--job-qpu-seconds", "4"),
        ],
        env=bare_environment(),
        stdout=subprocess.DEVNULL,
    )
    handle = RunningEmulator(EmulatorConfig(api_keys=(SecretStr("cli-key"),)), port)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, "emulator serve exited"
            try:
                handle.admin("GET", "/health")
                break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < deadline, "emulator serve never answered"
                time.sleep(0.1)
        point_environment_at(handle, monkeypatch)
        yield handle
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_flags_shape_the_emulator(served: RunningEmulator) -> None:
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)

    assert sorted(b.name for b in service.backends()) == ["ibm_nairobi", "ibmq_manila"]
    assert service.usage()["usage_limit_seconds"] == 600
    job = SamplerV2(mode=backend).run([bell_for(backend)], shots=10)
    assert job.status() == "QUEUED"
    assert served.job(job.job_id())["position_in_queue"] == 1
    with pytest.raises(IBMRuntimeError, match="429"):
        job.metrics()
    assert served.stats()["faults"] == {"GET /jobs/{job_id}/metrics": {"rate_limit_no_header": 1}}
    served.release(job.job_id())
    job.result()
    served.age(job.job_id(), 601)
    with pytest.raises(RuntimeJobNotFound):
        service.job(job.job_id())


def test_serve_refuses_a_retention_that_is_no_span() -> None:
    assert "is not a span" in refused_serve("--result-retention", "a while")
