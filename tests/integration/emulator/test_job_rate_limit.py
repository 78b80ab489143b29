"""IBM's job creation limit as the unmodified client meets it: a 429 that creates nothing, per API key."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import SecretStr
from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2
from qiskit_ibm_runtime.exceptions import IBMRuntimeError

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import SMALL_BACKEND, EmulatorFactory, bell_for
from .test_cli import bare_environment

# The command of this checkout (the venv's script may run another checkout's package).
COMMAND = [sys.executable, "-m", "prefect_qiskit_jobs.cli"]


def command_environment() -> dict[str, str]:
    return {**bare_environment(), "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "COLUMNS": "200"}


SECOND_KEY = "emulator-second-key"


def submit(service: QiskitRuntimeService) -> str:
    backend = service.backend(SMALL_BACKEND)
    job_id: str = SamplerV2(mode=backend).run([bell_for(backend)], shots=10).job_id()
    return job_id


def limited(make_emulator: EmulatorFactory, text: str) -> RunningEmulator:
    keys = (SecretStr("emulator-api-key"), SecretStr(SECOND_KEY))
    return make_emulator(job_rate_limit=text, backends=("manila",), api_keys=keys)


def test_beyond_the_limit_post_jobs_answers_429_with_retry_after_and_creates_nothing(
    make_emulator: EmulatorFactory,
) -> None:
    emulator = limited(make_emulator, "2/600")
    service = QiskitRuntimeService()
    first, second = submit(service), submit(service)

    with pytest.raises(IBMRuntimeError, match="429") as refused:
        submit(service)  # the client does not retry a refused POST

    response = refused.value.__context__.__cause__.response  # type: ignore[union-attr]
    assert 590 <= int(response.headers["Retry-After"]) <= 600
    assert response.json()["errors"][0]["code"] == 1202
    assert [job["id"] for job in emulator.jobs()] == [first, second]
    assert emulator.stats()["rate_limited"] == 1
    assert emulator.stats()["routes"]["POST /jobs"] == 3

    # Another API key has a window of its own.
    other = QiskitRuntimeService(
        channel="ibm_quantum_platform",
        token=SECOND_KEY,
        url=emulator.runtime_url,
        instance=emulator.config.instance_crn,
    )
    assert submit(other) not in (first, second)
    emulator.reset()  # counters and windows
    assert emulator.stats()["rate_limited"] == 0
    submit(service)


def test_no_retry_after_omits_the_header(make_emulator: EmulatorFactory) -> None:
    emulator = limited(make_emulator, "1/600:no-retry-after")
    service = QiskitRuntimeService()
    submit(service)
    with pytest.raises(IBMRuntimeError, match="429") as refused:
        submit(service)
    assert "Retry-After" not in refused.value.__context__.__cause__.response.headers  # type: ignore[union-attr]
    assert len(emulator.jobs()) == 1


def test_serve_refuses_a_bad_limit_as_a_usage_error() -> None:
    done = subprocess.run(
        [*COMMAND, "emulator", "serve", "--job-rate-limit", "five-a-minute"],
        env=command_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "JOBS/SECONDS" in done.stderr


def test_env_carries_the_limit_for_the_package() -> None:
    def printed(*extra: str) -> str:
        return subprocess.run(
            [*COMMAND, "emulator", "env", *extra],
            env=command_environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout

    assert "export PREFECT_QISKIT_JOBS_JOB_RATE_LIMIT=off" in printed()
    assert "export PREFECT_QISKIT_JOBS_JOB_RATE_LIMIT=5/60" in printed("--job-rate-limit", "5/60")
