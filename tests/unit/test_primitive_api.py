"""Choosing the primitives a job is submitted through: checked before anything is sent."""

from __future__ import annotations

import sys

import pytest

from prefect_qiskit_jobs import InvalidJobInputError, Primitive, PrimitiveApi
from prefect_qiskit_jobs.submit.call import check_primitive_api


@pytest.mark.parametrize("primitive", list(Primitive))
def test_each_api_names_its_program(primitive: Primitive) -> None:
    assert PrimitiveApi.V2.program_id(primitive) == primitive.value
    assert PrimitiveApi.EXECUTOR.program_id(primitive) == "executor"
    assert check_primitive_api(primitive, "executor") is PrimitiveApi.EXECUTOR


def test_an_unknown_api_is_refused() -> None:
    with pytest.raises(InvalidJobInputError, match="primitive_api must be one of 'v2', 'executor', not 'v1'"):
        check_primitive_api(Primitive.SAMPLER, "v1")


def test_a_client_without_executor_primitives_asks_for_v2(monkeypatch: pytest.MonkeyPatch) -> None:
    # As a client older than 0.50 would: the module is not there to import.
    monkeypatch.setitem(sys.modules, "qiskit_ibm_runtime.executor_estimator", None)

    with pytest.raises(
        InvalidJobInputError, match=r"needs qiskit-ibm-runtime 0\.50 or later.*primitive_api='v2'"
    ):
        check_primitive_api(Primitive.ESTIMATOR, PrimitiveApi.EXECUTOR)
    assert check_primitive_api(Primitive.ESTIMATOR, "v2") is PrimitiveApi.V2
