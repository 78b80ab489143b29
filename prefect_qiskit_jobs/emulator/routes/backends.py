"""The runtime API's backends and instance usage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from prefect_qiskit_jobs.emulator.catalog import Calibration, Device
from prefect_qiskit_jobs.emulator.traffic import RUNTIME_PREFIX

from .common import CODE_CALIBRATION_NOT_FOUND, ApiError, EmulatorDep, as_utc, flag, require_token
from .directory import PLAN_ID

router = APIRouter(prefix=RUNTIME_PREFIX, dependencies=[Depends(require_token)])


@router.get("/backends")
async def list_backends(emulator: EmulatorDep, include_mocks: str | None = None) -> dict[str, Any]:
    devices = emulator.catalog.listed(flag(include_mocks))
    return {"devices": [d.list_entry(emulator.queue.queue_length(d.name)) for d in devices]}


def _calibration(device: Device, calibration_id: str | None) -> Calibration:
    """The calibration asked for; an unknown id is an error, never the current calibration."""
    calibration = device.find_calibration(calibration_id)
    if calibration is None:
        raise ApiError(
            404,
            f"Calibration {calibration_id} not found for backend {device.name}",
            CODE_CALIBRATION_NOT_FOUND,
        )
    return calibration


@router.get("/backends/{name}/configuration")
async def backend_configuration(
    name: str, emulator: EmulatorDep, calibration_id: str | None = None
) -> dict[str, Any]:
    device = emulator.device(name)
    _calibration(device, calibration_id)
    return device.configuration


@router.get("/backends/{name}/properties")
async def backend_properties(
    name: str, emulator: EmulatorDep, calibration_id: str | None = None, updated_before: str | None = None
) -> dict[str, Any]:
    """The calibration asked for; with ``updated_before``, the last one taken before that time.

    With none that old, an empty object: what the client reads as "no properties" (None).
    """
    device = emulator.device(name)
    calibration = _calibration(device, calibration_id)
    moment = as_utc(updated_before, "updated_before")
    if moment is not None:
        found = device.calibration_before(moment, calibration if calibration_id is not None else None)
        if found is None:
            return {}
        calibration = found
    return device.properties(calibration)


@router.get("/backends/{name}/status")
async def backend_status(name: str, emulator: EmulatorDep) -> dict[str, Any]:
    status: dict[str, Any] = emulator.device(name).status(emulator.queue.queue_length(name))
    return status


@router.get("/instances/usage")
async def instance_usage(emulator: EmulatorDep) -> dict[str, Any]:
    """What the client's ``service.usage()`` reads; it adds ``usage_remaining_seconds`` itself."""
    limit = emulator.config.usage_limit_seconds
    return {
        "instance_id": emulator.config.instance_crn,
        "plan_id": PLAN_ID,
        "usage_consumed_seconds": round(emulator.usage_consumed(), 3),
        "usage_limit_seconds": limit,
        "usage_allocation_seconds": None,
        "usage_limit_reached": emulator.usage_limit_reached(),
        "usage_period": {"start_time": None, "end_time": None},
    }
