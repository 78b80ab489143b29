"""One sync/async rule for every public call, as in Prefect 3: ``name`` blocks and works in sync
code, ``aname`` is its awaitable twin; tasks and flows work in both kinds of flow.

Each public callable is classified from what it is, not from a list kept by hand, so a new name
that breaks the rule fails here.
"""

from __future__ import annotations

import inspect

import pytest
from prefect import Flow, Task

import prefect_qiskit_jobs

NAMES = prefect_qiskit_jobs.__all__


def is_async(value: object) -> bool:
    fn = value.fn if isinstance(value, (Task, Flow)) else value
    return inspect.iscoroutinefunction(fn)


def callables() -> list[str]:
    return [name for name in NAMES if callable(getattr(prefect_qiskit_jobs, name)) and name[0].islower()]


@pytest.mark.parametrize("name", callables())
def test_each_async_call_is_the_a_twin_of_a_sync_one(name: str) -> None:
    value = getattr(prefect_qiskit_jobs, name)
    if isinstance(value, Flow):
        pytest.skip("a flow runs to its end when called from sync or async code alike")
    twin = name[1:]
    if is_async(value):
        assert name.startswith("a"), f"{name} is awaitable but not named a<name>"
        assert twin in NAMES, f"{name} has no sync twin {twin}"
        assert not is_async(getattr(prefect_qiskit_jobs, twin)), f"{twin} must block, not be awaited"
    else:
        assert not (name.startswith("a") and twin in NAMES), f"{name} looks like a twin of {twin} but blocks"


@pytest.mark.parametrize("name", [name for name in callables() if f"a{name}" in NAMES])
def test_each_twin_pair_takes_the_same_parameters(name: str) -> None:
    def parameters(value: object) -> list[str]:
        fn = value.fn if isinstance(value, (Task, Flow)) else value
        return list(inspect.signature(fn).parameters)

    assert parameters(getattr(prefect_qiskit_jobs, f"a{name}")) == parameters(
        getattr(prefect_qiskit_jobs, name)
    )


def test_the_rule_covers_the_waits_and_submits() -> None:
    pairs = {name for name in callables() if f"a{name}" in NAMES}

    assert {"wait_for_job", "wait_for_jobs", "submit_sampler_job", "fetch_job_result"} <= pairs
