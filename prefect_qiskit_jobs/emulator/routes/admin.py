"""The emulator's own routes, outside IQP's paths and without auth: what tests and benchmarks read and steer.

Counters and faults, every job as the emulator sees it, released and scripted jobs, jobs
created in bulk, and devices' calibrations.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, TypeGuard

from fastapi import APIRouter, Request

from prefect_qiskit_jobs.emulator import execution
from prefect_qiskit_jobs.emulator.catalog import Calibration
from prefect_qiskit_jobs.emulator.config import FaultRule
from prefect_qiskit_jobs.emulator.store import JobRecord, new_id, utcnow
from prefect_qiskit_jobs.emulator.traffic import ADMIN_PREFIX

from .common import CODE_BACKEND_NOT_FOUND, CODE_INVALID_JOB, ApiError, EmulatorDep, json_object

router = APIRouter(prefix=ADMIN_PREFIX)
MAX_AGE = 10 * 365 * 86400


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _given(body: dict[str, Any], key: str, default: Any) -> Any:
    """A body field, or ``default`` when it is absent or null (never when it is merely falsy)."""
    value = body.get(key)
    return default if value is None else value


@router.get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


@router.get("/stats")
async def stats(emulator: EmulatorDep) -> dict[str, Any]:
    """Request counters, and ``pending`` (jobs queued or running now) with ``peak_pending`` (most at once)."""
    store = emulator.store
    return {**emulator.traffic.snapshot(), "pending": store.pending, "peak_pending": store.peak_pending}


@router.get("/jobs")
async def all_jobs(emulator: EmulatorDep) -> list[dict[str, Any]]:
    emulator.expire()
    positions = emulator.queue.positions()
    return [
        {
            "id": j.id,
            "backend": j.backend,
            "program_id": j.program_id,
            "status": j.status,
            "wire_status": j.wire_status,
            "reason": j.reason,
            "reason_code": j.reason_code,
            "tags": j.tags,
            "session_id": j.session_id,
            "position_in_queue": positions.get(j.id),
            "created": j.created.isoformat(),
            "running": j.running.isoformat() if j.running else None,
            "finished": j.finished.isoformat() if j.finished else None,
        }
        for j in sorted(emulator.store.jobs.values(), key=lambda j: (j.created, j.id))
    ]


@router.post("/reset")
async def reset(emulator: EmulatorDep, jobs: bool = False) -> dict[str, bool]:
    """Zero the counters and restore the configured faults; with ``jobs=true`` also forget every job."""
    emulator.traffic.set_faults(emulator.config.faults, emulator.config.fault_seed)
    emulator.traffic.reset()
    if emulator.job_rate_limit is not None:
        emulator.job_rate_limit.reset()
    emulator.store.reset_peak()
    if jobs:
        for job in list(emulator.store.jobs.values()):
            if not job.is_final:
                emulator.queue.cancel(job.id, at_once=True)
        emulator.store.clear()
    return {"ok": True}


@router.put("/faults")
async def replace_faults(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    """Replace the fault rules in force with ``{"faults": [FaultRule...], "seed": int?}``."""
    body = json_object(await request.body(), empty=b"{}")
    faults, seed = _given(body, "faults", []), _given(body, "seed", emulator.config.fault_seed)
    if not isinstance(faults, list) or not _is_int(seed):
        raise ApiError(400, 'Give {"faults": [FaultRule...], "seed": int?}', CODE_INVALID_JOB)
    try:
        rules = tuple(FaultRule.model_validate(rule) for rule in faults)
    except ValueError as exc:
        raise ApiError(400, f"Invalid fault rules: {exc}", CODE_INVALID_JOB) from None
    emulator.traffic.set_faults(rules, seed)
    return {"faults": [rule.model_dump() for rule in rules], "seed": seed}


@router.post("/jobs/{job_id}/fail")
async def script_failure(job_id: str, request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    """Make a queued job fail with ``{"reason": ...}`` when it runs."""
    job = emulator.job(job_id)
    reason = _given(json_object(await request.body(), empty=b"{}"), "reason", "Scripted failure")
    if not isinstance(reason, str):
        raise ApiError(400, 'Give the failure as {"reason": "..."}', CODE_INVALID_JOB)
    emulator.store.update_job(job.id, scripted_failure=reason)
    return {"id": job.id, "scripted_failure": reason}


@router.put("/jobs/{job_id}/status")
async def override_status(job_id: str, request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    """Answer ``{"status": ...}`` as the job's status on the job routes until cleared.

    Only the string the job routes answer changes (as when IBM adds a status): the job queues,
    runs and ends as before, and listings filter on its real state.
    """
    job = emulator.job(job_id)
    status = json_object(await request.body(), empty=b"{}").get("status")
    if not isinstance(status, str) or not status.strip():
        raise ApiError(400, 'Give the status to answer as {"status": "..."}', CODE_INVALID_JOB)
    emulator.store.update_job(job.id, wire_status=status)
    return {"id": job.id, "wire_status": status}


@router.delete("/jobs/{job_id}/status")
async def clear_status(job_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    """Answer the job's real status again."""
    job = emulator.job(job_id)
    emulator.store.update_job(job.id, wire_status=None)
    return {"id": job.id, "wire_status": None}


@router.post("/jobs/{job_id}/age")
async def age_job(job_id: str, request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    """Move a job's times ``{"seconds": n}`` into the past: how tests pass a retention without waiting."""
    job = emulator.job(job_id)
    seconds = json_object(await request.body(), empty=b"{}").get("seconds")
    # At most ten years: enough for any retention, and far from the limits of datetime arithmetic.
    if not (isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and 0 <= seconds <= MAX_AGE):
        raise ApiError(
            400, f'Give how far to age the job as {{"seconds": n}}, 0 <= n <= {MAX_AGE}', CODE_INVALID_JOB
        )
    aged = emulator.store.age(job.id, float(seconds))
    return {"id": job.id, "created": aged.created.isoformat()}


@router.post("/jobs/{job_id}/release")
async def release_job(job_id: str, emulator: EmulatorDep) -> dict[str, str]:
    """Let a queued job start without waiting out the queue delay."""
    emulator.job(job_id)
    emulator.queue.release(job_id)
    return {"id": job_id}


@router.post("/release")
async def release_all(emulator: EmulatorDep) -> dict[str, int]:
    queued = [j.id for j in emulator.store.jobs.values() if j.status == "Queued"]
    for job_id in queued:
        emulator.queue.release(job_id)
    return {"released": len(queued)}


MAX_BULK_JOBS = 100_000


@router.post("/jobs")
async def create_jobs(request: Request, emulator: EmulatorDep) -> dict[str, list[str]]:
    """Create ``{"count": n, "backend": ..., "tags": [...]}`` jobs at once, queued as if just submitted.

    Benchmarks wait for thousands of queued jobs; submitting them through the client takes minutes.
    They queue under the configured delay, in the order of the ids answered. Without ``params``
    (``program_id`` defaults to ``sampler``) a job carries no pubs and ends Failed if it runs.
    """
    body = json_object(await request.body(), empty=b"{}")
    count, backend = body.get("count"), body.get("backend")
    program_id = _given(body, "program_id", "sampler")
    tags, params = _given(body, "tags", []), _given(body, "params", {})
    if not (
        _is_int(count)
        and isinstance(backend, str)
        and isinstance(program_id, str)
        and isinstance(tags, list)
        and all(isinstance(tag, str) for tag in tags)
        and isinstance(params, dict)
    ):
        raise ApiError(
            400, "Give {count: int, backend: str, program_id?, tags?: [str], params?: {}}", CODE_INVALID_JOB
        )
    if not 1 <= count <= MAX_BULK_JOBS:
        raise ApiError(400, f"count must be between 1 and {MAX_BULK_JOBS}", CODE_INVALID_JOB)
    if emulator.catalog.get(backend) is None:
        raise ApiError(400, f"Backend {backend} not found", CODE_BACKEND_NOT_FOUND)
    if program_id not in execution.PROGRAMS:
        raise ApiError(400, f"Program {program_id} not found", CODE_INVALID_JOB)
    now, params_json = utcnow(), json.dumps(params)
    eligible = now + timedelta(seconds=emulator.config.queue_delay)
    ids = []
    for index in range(count):
        job = JobRecord(
            id=new_id(),
            backend=backend,
            program_id=program_id,
            created=now + timedelta(microseconds=index),
            tags=list(tags),
            params=params_json,
            eligible_at=eligible,
        )
        emulator.store.put_job(job)
        ids.append(job.id)
    emulator.queue.notify()
    return {"ids": ids}


def _calibration_body(name: str, calibration: Calibration) -> dict[str, str]:
    return {
        "backend": name,
        "calibration_id": calibration.id,
        "last_update_date": calibration.taken.isoformat(),
    }


@router.get("/backends/{name}/calibration")
async def current_calibration(name: str, emulator: EmulatorDep) -> dict[str, str]:
    """The device's current calibration: the id a client may pass as ``calibration_id``, and its date."""
    return _calibration_body(name, emulator.device(name).calibration)


@router.post("/backends/{name}/recalibrate")
async def recalibrate(name: str, emulator: EmulatorDep) -> dict[str, str]:
    """Take a new calibration: properties carry its date from now on; earlier ids stay readable."""
    return _calibration_body(name, emulator.device(name).recalibrate())
