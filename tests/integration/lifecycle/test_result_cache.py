"""``IBMJobCache``: the same work is one IBM job, across flow runs and processes, and only when asked.

The evidence is the emulator's count of ``POST /jobs``. Each test keeps its cache entries in a
directory of its own (the policy's ``key_storage``), so that no test finds another's entries in the
session's shared result storage. Jobs that only need to exist stay queued on the held emulator.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.cache_policies import NO_CACHE
from prefect.results import ResultRecordMetadata
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH
from qiskit import QuantumCircuit

import prefect_qiskit_jobs
from prefect_qiskit_jobs import (
    IBMJobCache,
    IBMQuantumCredentials,
    JobRef,
    afetch_job_result,
    asubmit_sampler_job,
    await_for_job,
    fetch_job_result,
    result_key,
    submit_sampler_job,
    submit_sampler_jobs,
    wait_for_job,
)
from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import (
    FAST_POLL,
    OPTIONS,
    SHOTS,
    SMALL_BACKEND,
    assert_bell,
    counts_of,
    current_flow_run_id,
    run_logs,
)

# Another device the Bell circuit transpiled for ibmq_manila is also ISA on.
OTHER_BACKEND = "ibm_nairobi"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def policy(tmp_path: Path) -> IBMJobCache:
    return IBMJobCache(key_storage=tmp_path / "cache-keys")


def entries(policy: IBMJobCache) -> list[Path]:
    """The cache entries' records (their metadata) in the policy's own key storage."""
    assert isinstance(policy.key_storage, Path)
    return sorted(path for path in policy.key_storage.rglob("*") if path.is_file())


def posts(emulator: RunningEmulator) -> int:
    count: int = emulator.stats()["routes"].get("POST /jobs", 0)
    return count


async def test_a_second_identical_run_creates_no_job_and_returns_the_same_counts(
    emulator: RunningEmulator, bell_isa: QuantumCircuit, policy: IBMJobCache
) -> None:
    submit = asubmit_sampler_job.with_options(cache_policy=policy)

    @flow
    async def bell() -> dict[str, Any]:
        state = await submit([bell_isa], backend=SMALL_BACKEND, options=OPTIONS, return_state=True)
        job = await state.aresult()
        await await_for_job(job, poll=FAST_POLL)
        result = await afetch_job_result(job)
        return {"job": job, "state": state.name, "counts": counts_of(result), "run": current_flow_run_id()}

    first = await bell()
    second = await bell()

    assert posts(emulator) == 1
    assert second["job"] == first["job"]
    assert second["counts"] == first["counts"]
    assert_bell(second["counts"])
    # What the UI shows: the second submit's task run is Cached, and its log names the earlier job.
    assert (first["state"], second["state"]) == ("Completed", "Cached")
    job_id = first["job"].job_id
    assert any(job_id in line and "cache" in line.lower() for line in await run_logs(second["run"]))


def test_the_cache_is_never_used_unless_asked_for(held: RunningEmulator, bell_isa: QuantumCircuit) -> None:
    submits = [name for name in prefect_qiskit_jobs.__all__ if "submit_" in name]
    assert len(submits) == 8
    assert all(getattr(prefect_qiskit_jobs, name).cache_policy is NO_CACHE for name in submits)

    @flow
    def plain() -> JobRef:
        return submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)

    first, second = plain(), plain()

    assert first.job_id != second.job_id
    assert posts(held) == 2


def test_a_splitting_submit_reuses_all_its_jobs(
    held: RunningEmulator, bell_isa: QuantumCircuit, policy: IBMJobCache
) -> None:
    submit = submit_sampler_jobs.with_options(cache_policy=policy)

    @flow
    def split() -> list[JobRef]:
        return submit([bell_isa, bell_isa], backend=SMALL_BACKEND, max_pubs_per_job=1, options=OPTIONS)

    first = split()

    assert len({job.job_id for job in first}) == 2
    assert split() == first
    assert posts(held) == 2


def with_an_x_first(circuit: QuantumCircuit) -> QuantumCircuit:
    changed = QuantumCircuit(*circuit.qregs, *circuit.cregs, name=circuit.name)
    changed.x(0)
    return changed.compose(circuit)


CHANGES: dict[str, Callable[[dict[str, Any], RunningEmulator], None]] = {
    "shots": lambda work, _: work.update(options={"default_shots": SHOTS + 1}),
    "one gate": lambda work, _: work.update(circuit=with_an_x_first(work["circuit"])),
    "an option": lambda work, _: work.update(options={**OPTIONS, "environment": {"log_level": "DEBUG"}}),
    "the backend": lambda work, _: work.update(backend=OTHER_BACKEND),
    "the calibration": lambda work, emulator: emulator.recalibrate(work["backend"]),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_changed_work_is_a_new_job(
    held: RunningEmulator, bell_isa: QuantumCircuit, policy: IBMJobCache, change: str
) -> None:
    submit = submit_sampler_job.with_options(cache_policy=policy)
    work: dict[str, Any] = {"circuit": bell_isa, "backend": SMALL_BACKEND, "options": OPTIONS}

    @flow
    def experiment() -> JobRef:
        return submit([work["circuit"]], backend=work["backend"], options=work["options"])

    first = experiment()
    assert experiment() == first  # the same work again: no new job
    CHANGES[change](work, held)
    changed = experiment()

    assert changed.job_id != first.job_id
    assert posts(held) == 2
    assert experiment() == changed


@pytest.mark.parametrize("how", ["expired", "refreshed"])
def test_an_expired_or_refreshed_entry_is_a_new_job(
    held: RunningEmulator, bell_isa: QuantumCircuit, policy: IBMJobCache, how: str
) -> None:
    submit = submit_sampler_job.with_options(cache_policy=policy, cache_expiration=timedelta(hours=1))

    def run(task: Any) -> JobRef:
        @flow
        def experiment() -> JobRef:
            job: JobRef = task([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
            return job

        return experiment()

    first = run(submit)
    (entry,) = entries(policy)
    metadata = ResultRecordMetadata.load_bytes(entry.read_bytes())
    assert metadata.expiration is not None
    assert metadata.expiration > datetime.now(timezone.utc) + timedelta(minutes=50)
    if how == "expired":
        # As if the hour had passed: the entry's expiration is in the past.
        hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
        entry.write_bytes(metadata.model_copy(update={"expiration": hour_ago}).dump_bytes())
        again = run(submit)
    else:
        again = run(submit.with_options(refresh_cache=True))

    assert again.job_id != first.job_id
    assert posts(held) == 2
    assert run(submit) == again  # the new job's entry replaced the old one


def forget_the_jobs_result(job: JobRef, _policy: IBMJobCache) -> None:
    """The stored result is deleted from Prefect's storage, and the job (with its result) from IBM."""
    (Path(PREFECT_LOCAL_STORAGE_PATH.value()) / result_key(job)).unlink()
    IBMQuantumCredentials.from_environment().get_client().delete_job(job.job_id)


def forget_the_entrys_value(_job: JobRef, policy: IBMJobCache) -> None:
    """The entry's record stays in the key storage, but the value it points to is deleted."""
    (entry,) = entries(policy)
    stored = Path(ResultRecordMetadata.load_bytes(entry.read_bytes()).storage_key or "")
    if not stored.is_absolute():
        stored = Path(PREFECT_LOCAL_STORAGE_PATH.value()) / stored
    stored.unlink()


@pytest.mark.parametrize("forget", [forget_the_jobs_result, forget_the_entrys_value], ids=["result", "value"])
def test_a_cached_job_whose_payload_is_gone_is_submitted_again_with_a_warning(
    emulator: RunningEmulator,
    bell_isa: QuantumCircuit,
    policy: IBMJobCache,
    forget: Callable[[JobRef, IBMJobCache], None],
) -> None:
    submit = submit_sampler_job.with_options(cache_policy=policy)

    @flow
    def bell() -> dict[str, Any]:
        state = submit([bell_isa], backend=SMALL_BACKEND, options=OPTIONS, return_state=True)
        job = state.result()
        wait_for_job(job, poll=FAST_POLL)
        counts = counts_of(fetch_job_result(job))
        return {"job": job, "state": state.name, "counts": counts, "run": current_flow_run_id()}

    first = bell()
    forget(first["job"], policy)
    second = bell()

    assert second["job"].job_id != first["job"].job_id
    assert second["state"] == "Completed"
    assert posts(emulator) == 2
    assert_bell(second["counts"])
    warned = [line for line in asyncio.run(run_logs(second["run"])) if "submitting a new job" in line]
    assert len(warned) == 1
    if forget is forget_the_jobs_result:
        assert first["job"].job_id in warned[0]
    assert bell()["job"] == second["job"]  # and the new job is what the cache holds now


# The same experiment, built from scratch by whichever process runs it: its circuit gets a name
# and a parameter of its own in each process, which the cache key must not depend on.
EXPERIMENT = """
import json, sys
from pathlib import Path
from prefect import flow
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Parameter
from qiskit_ibm_runtime.fake_provider import FakeManilaV2
from prefect_qiskit_jobs import IBMJobCache, submit_sampler_job

def rotated_bell():
    circuit = QuantumCircuit(2)
    circuit.ry(Parameter("theta"), 0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return transpile(circuit, backend=FakeManilaV2(), optimization_level=1, seed_transpiler=7)

@flow
def experiment(key_storage: str) -> str:
    submit = submit_sampler_job.with_options(cache_policy=IBMJobCache(key_storage=Path(key_storage)))
    state = submit([(rotated_bell(), [0.25])], backend="ibmq_manila", options={"default_shots": 200},
                   return_state=True)
    return json.dumps({"job_id": state.result().job_id, "state": state.name})
"""


def test_another_process_reuses_the_job_of_the_same_work(
    held: RunningEmulator, policy: IBMJobCache, prefect_api: dict[str, str]
) -> None:
    here: dict[str, Any] = {}
    exec(EXPERIMENT, here)  # the test's own code, run here and in a child process
    first = json.loads(here["experiment"](str(policy.key_storage)))

    child = EXPERIMENT + "\nprint('RESULT ' + experiment(sys.argv[1]))\n"
    done = subprocess.run(
        [sys.executable, "-c", child, str(policy.key_storage)],
        env={**os.environ, **prefect_api, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    elsewhere = json.loads(line.removeprefix("RESULT "))

    assert first["state"] == "Completed"
    assert elsewhere == {"job_id": first["job_id"], "state": "Cached"}
    assert posts(held) == 1
