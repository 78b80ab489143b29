"""The public API is what ``__all__`` says: sorted, every name present, nothing public left out."""

from __future__ import annotations

import types

import pytest

import prefect_qiskit_jobs


def test_all_is_sorted_and_unique() -> None:
    exported = prefect_qiskit_jobs.__all__

    assert exported == sorted(exported)
    assert len(exported) == len(set(exported))


def test_every_exported_name_exists() -> None:
    missing = [name for name in prefect_qiskit_jobs.__all__ if not hasattr(prefect_qiskit_jobs, name)]

    assert missing == []


def test_every_public_name_is_exported() -> None:
    public = {
        name
        for name in dir(prefect_qiskit_jobs)
        if not name.startswith("_")
        and not isinstance(getattr(prefect_qiskit_jobs, name), types.ModuleType)
        and name not in {"annotations", "importlib", "TYPE_CHECKING", "Any"}
    }

    assert public == set(prefect_qiskit_jobs.__all__)


def test_a_name_that_does_not_exist_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'submit_job'"):
        _ = prefect_qiskit_jobs.submit_job  # type: ignore[attr-defined]


def test_exported_errors_share_one_root() -> None:
    errors = [
        value
        for name in prefect_qiskit_jobs.__all__
        if isinstance(value := getattr(prefect_qiskit_jobs, name), type) and issubclass(value, Exception)
    ]

    assert errors
    assert all(issubclass(error, prefect_qiskit_jobs.QiskitJobsError) for error in errors)
