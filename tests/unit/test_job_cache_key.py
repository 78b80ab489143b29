"""The key of ``IBMJobCache``: the work and nothing else, the same in every process; no server needed."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prefect.cache_policies import INPUTS
from pydantic import SecretStr
from qiskit import QuantumCircuit, qpy, transpile
from qiskit.circuit import Parameter
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

import prefect_qiskit_jobs
from prefect_qiskit_jobs import IBMJobCache, IBMQuantumCredentials, Primitive, submit_sampler_job
from prefect_qiskit_jobs.submit.cache import account, circuit_digest, describe_work, submit_kind, work_key


def rotated_bell() -> QuantumCircuit:
    """Built afresh on each call: a new name (``circuit-<n>``) and a new parameter (a new UUID)."""
    circuit = QuantumCircuit(2)
    circuit.ry(Parameter("theta"), 0)
    circuit.cx(0, 1)
    circuit.measure_all()
    isa: QuantumCircuit = transpile(circuit, backend=FakeManilaV2(), optimization_level=1, seed_transpiler=7)
    return isa


def sampler_work(**inputs: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"pubs": [(rotated_bell(), [0.25])], "backend": "ibmq_manila", "options": {}}
    return describe_work(Primitive.SAMPLER, False, {**base, **inputs})


def test_the_same_circuit_built_twice_has_one_digest() -> None:
    first, second = rotated_bell(), rotated_bell()

    assert first.name != second.name
    assert first.parameters[0] != second.parameters[0]
    assert circuit_digest(first) == circuit_digest(second)


def test_the_digest_is_the_same_in_another_process(tmp_path: Path) -> None:
    # QPY writes a transpiled circuit's layout registers in an order that follows string hashing:
    # under these two seeds the plain QPY bytes of the same circuit differ. The child processes
    # run the digest's own source on the circuit read back from QPY, with qiskit alone imported.
    circuit = rotated_bell()
    saved = tmp_path / "circuit.qpy"
    with saved.open("wb") as file:
        qpy.dump(circuit, file)
    child = "\n".join(
        [
            "from __future__ import annotations",
            "import hashlib, io, sys, uuid",
            "from qiskit import qpy",
            inspect.getsource(circuit_digest),
            "with open(sys.argv[1], 'rb') as file:",
            "    print(circuit_digest(qpy.load(file)[0]))",
        ]
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", child, str(saved)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in ("0", "3")
    ]
    digests = {child.communicate(timeout=120)[0].strip() for child in children}

    assert digests == {circuit_digest(circuit)}


def test_what_changes_the_work_changes_the_key() -> None:
    base = sampler_work()
    one_more_gate = rotated_bell()
    one_more_gate.x(1)
    changed = [
        sampler_work(pubs=[(rotated_bell(), [0.5])]),
        sampler_work(pubs=[(rotated_bell(), [0.25], 100)]),
        sampler_work(pubs=[(one_more_gate, [0.25])]),
        sampler_work(options={"default_shots": 100}),
        sampler_work(backend="ibm_nairobi"),
        sampler_work(primitive_api="executor"),
    ]

    assert sampler_work() == base
    assert all(work != base for work in changed)
    assert len({str(work) for work in changed}) == len(changed)


def test_what_is_about_the_call_and_not_the_work_leaves_the_key_alone() -> None:
    assert sampler_work(
        tags=["experiment:bell"], detached=True, fresh=True, idempotency_key="mine", credentials="ibm-quantum"
    ) == sampler_work(options={})


def test_estimator_observables_and_precision_are_in_the_key() -> None:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)

    def work(*pub: Any) -> dict[str, Any]:
        return describe_work(Primitive.ESTIMATOR, False, {"pubs": [(circuit, *pub)], "backend": "b"})

    keys = {str(work("ZZ")), str(work("XX")), str(work(["ZZ", "XX"])), str(work("ZZ", None, 0.01))}

    assert len(keys) == 4
    assert work("ZZ") == work("ZZ")


def test_the_split_is_in_the_key_of_a_splitting_submit_only() -> None:
    def work(split: bool, size: int) -> dict[str, Any]:
        inputs = {
            "pubs": [rotated_bell().assign_parameters([0.1])] * 3,
            "backend": "b",
            "max_pubs_per_job": size,
        }
        return describe_work(Primitive.SAMPLER, split, inputs)

    assert work(True, 1) != work(True, 2)
    assert work(False, 1) == work(False, 2)


def test_the_key_names_the_instance_never_the_token() -> None:
    credentials = IBMQuantumCredentials(token=SecretStr("s3cret-api-key"), instance="crn:v1:x")
    where = account(credentials)
    key = work_key(sampler_work(), where, "2026-12-06T07:00:00+00:00")

    assert where["instance"] == "crn:v1:x"
    assert "s3cret" not in str(where)
    assert key.startswith("qiskit-job-cache-")
    assert key != work_key(sampler_work(), where, "2026-12-07T07:00:00+00:00")


def test_the_sync_and_async_twins_share_their_entries() -> None:
    for name in (
        "submit_sampler_job",
        "submit_sampler_jobs",
        "submit_estimator_job",
        "submit_estimator_jobs",
    ):
        sync, twin = getattr(prefect_qiskit_jobs, name), getattr(prefect_qiskit_jobs, f"a{name}")
        assert submit_kind(sync.fn) == submit_kind(twin.fn)


def test_the_policy_keys_the_submit_tasks_only_and_alone() -> None:
    with pytest.raises(TypeError, match="submit tasks only"):
        submit_kind(prefect_qiskit_jobs.wait_for_job.fn)
    with pytest.raises(TypeError, match="use it alone"):
        _ = IBMJobCache() + INPUTS


def test_a_submit_given_the_policy_persists_its_result() -> None:
    cached = submit_sampler_job.with_options(cache_policy=IBMJobCache())

    assert isinstance(cached.cache_policy, IBMJobCache)
    assert cached.persist_result is True
    assert cached.name == submit_sampler_job.name
