"""The runtime API's jobs: create (checked as IBM checks them), list, read, cancel, tag, results."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response
from qiskit import __version__ as QISKIT_VERSION

from prefect_qiskit_jobs.emulator import execution
from prefect_qiskit_jobs.emulator.store import JobQuery, JobRecord, new_id, utcnow, wire_time
from prefect_qiskit_jobs.emulator.traffic import RUNTIME_PREFIX

from .common import (
    CODE_BACKEND_NOT_FOUND,
    CODE_INVALID_JOB,
    CODE_INVALID_STATE,
    CODE_JOB_NOT_FOUND,
    CODE_SESSION_CLOSED,
    CODE_TOO_MANY_REQUESTS,
    CODE_USAGE_LIMIT,
    USAGE_LIMIT_MESSAGE,
    ApiError,
    Emulator,
    EmulatorDep,
    as_utc,
    flag,
    json_object,
    require_token,
)

router = APIRouter(prefix=RUNTIME_PREFIX, dependencies=[Depends(require_token)])


def _job_request(raw: bytes) -> dict[str, Any]:
    body = json_object(raw)
    for key, kind in (("program_id", str), ("backend", str), ("params", dict)):
        if not isinstance(body.get(key), kind):
            raise ApiError(400, f"The request body needs {key!r} ({kind.__name__})", CODE_INVALID_JOB)
    tags = body.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        raise ApiError(400, "'tags' must be a list of strings", CODE_INVALID_JOB)
    # The optional fields the client sends, each only when set: held to their types, never coerced.
    for key, accepts, what in _OPTIONAL_FIELDS:
        value = body.get(key)
        if value is not None and not accepts(value):
            raise ApiError(400, f"'{key}' must be {what}, not {value!r:.100}", CODE_INVALID_JOB)
    return body


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


_OPTIONAL_FIELDS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("session_id", lambda value: isinstance(value, str), "a string"),
    ("calibration_id", lambda value: isinstance(value, str), "a string"),
    ("log_level", lambda value: isinstance(value, str), "a string"),
    ("runtime", lambda value: isinstance(value, str), "a string"),
    ("cost", _positive_int, "a positive number of seconds"),
    ("session_time", _positive_int, "a positive number of seconds"),
    ("private", lambda value: isinstance(value, bool), "true or false"),
    ("start_session", lambda value: isinstance(value, bool), "true or false"),
)


def _check_session(emulator: Emulator, session_id: str, backend: str) -> None:
    emulator.queue.settle_sessions()
    session = emulator.store.sessions.get(session_id)
    if session is None:
        raise ApiError(400, f"Session {session_id} not found", CODE_SESSION_CLOSED)
    if not session.accepting_jobs or session.state == "closed":
        raise ApiError(400, f"Session {session_id} is closed and accepts no jobs", CODE_SESSION_CLOSED)
    if session.backend and session.backend != backend:
        raise ApiError(
            400, f"Session {session_id} runs on {session.backend}, not {backend}", CODE_INVALID_JOB
        )


@router.post("/jobs")
async def create_job(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    limit = emulator.job_rate_limit
    if limit is None:
        return await _create_job(request, emulator)
    # Refused before the body is read, as IBM's gateway does; an admitted request that then
    # creates no job (bad input) gives its place back.
    account = emulator.issuer.account(request.headers.get("authorization")) or ""
    wait = limit.admit(account)
    if wait is not None:
        emulator.traffic.count_rate_limited()
        headers = {"Retry-After": str(wait)} if limit.spec.retry_after else None
        message = "Too many requests: the job creation rate limit is reached"
        raise ApiError(429, message, CODE_TOO_MANY_REQUESTS, headers)
    try:
        return await _create_job(request, emulator)
    except BaseException:
        limit.give_back(account)
        raise


async def _create_job(request: Request, emulator: Emulator) -> dict[str, Any]:
    if emulator.usage_limit_reached():  # running jobs go on; no new one is accepted
        raise ApiError(409, USAGE_LIMIT_MESSAGE, CODE_USAGE_LIMIT)
    body = _job_request(await request.body())
    program_id, backend = body["program_id"], body["backend"]
    if program_id not in execution.PROGRAMS:
        raise ApiError(404, f"Program {program_id} not found", CODE_INVALID_JOB)
    device = emulator.catalog.get(backend)
    if device is None:
        raise ApiError(400, f"Backend {backend} not found", CODE_BACKEND_NOT_FOUND)
    calibration_id = body.get("calibration_id")
    if calibration_id is not None and device.find_calibration(str(calibration_id)) is None:
        raise ApiError(400, f"Calibration {calibration_id} not found for backend {backend}", CODE_INVALID_JOB)
    session_id = body.get("session_id")
    if session_id is not None:
        _check_session(emulator, session_id, backend)
    params_json = json.dumps(body["params"])

    try:
        await anyio.to_thread.run_sync(execution.check, program_id, params_json, device)
    except execution.InvalidJob as exc:
        raise ApiError(400, str(exc), CODE_INVALID_JOB) from None
    now = utcnow()
    tags: list[str] = body.get("tags") or []
    prefix = emulator.config.fail_tag_prefix + "="
    scripted = next((t[len(prefix) :] for t in tags if t.startswith(prefix)), None)
    cost = body.get("cost")
    job = JobRecord(
        id=new_id(),
        backend=backend,
        program_id=program_id,
        created=now,
        tags=tags,
        session_id=session_id,
        params=params_json,
        max_execution_time=int(cost) if isinstance(cost, (int, float)) and cost > 0 else None,
        private=bool(body.get("private")),
        log_level=body.get("log_level"),
        eligible_at=now + timedelta(seconds=emulator.config.queue_delay),
        scripted_failure=scripted,
        dry_run=device.mock,
    )
    emulator.store.put_job(job)
    emulator.queue.notify()
    return {"id": job.id, "backend": job.backend, "session_id": job.session_id}


# Paging numbers past a 32-bit integer are refused, as a typed service would: the harsher reading.
MAX_PAGE_NUMBER = 2**31 - 1


@router.get("/jobs")
async def list_jobs(
    emulator: EmulatorDep,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE_NUMBER)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_PAGE_NUMBER)] = 0,
    backend: str | None = None,
    pending: str | None = None,
    program: str | None = None,
    tags: Annotated[list[str] | None, Query()] = None,
    session_id: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    sort: str | None = None,
    exclude_params: str | None = None,
    include_mocks: str | None = None,
) -> dict[str, Any]:
    if sort is not None and sort.upper() not in ("ASC", "DESC"):
        raise ApiError(400, f"'sort' must be ASC or DESC, not {sort!r}", CODE_INVALID_JOB)
    query = JobQuery(
        include_mocks=flag(include_mocks),
        backend=backend,
        pending=None if pending is None else flag(pending),
        program=program,
        tags=tuple(tags or ()),
        session_id=session_id,
        created_after=as_utc(created_after, "created_after"),
        created_before=as_utc(created_before, "created_before"),
        ascending=(sort or "DESC").upper() == "ASC",
        offset=offset,
        limit=limit,
    )
    emulator.expire()
    page, count = emulator.store.list_jobs(query)
    include_params = not flag(exclude_params)
    return {"jobs": [j.wire(include_params) for j in page], "count": count, "limit": limit, "offset": offset}


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, emulator: EmulatorDep, exclude_params: str | None = None) -> dict[str, Any]:
    return emulator.job(job_id).wire(include_params=not flag(exclude_params))


@router.delete("/jobs/{job_id}", status_code=204)
async def delete_job(job_id: str, emulator: EmulatorDep) -> Response:
    job = emulator.job(job_id)
    if not job.is_final:
        emulator.queue.cancel(job_id, at_once=True)
    emulator.store.delete_job(job_id)
    return Response(status_code=204)


@router.get("/jobs/{job_id}/results")
async def job_results(job_id: str, emulator: EmulatorDep) -> Response:
    job = emulator.job(job_id)
    # A private job's result can be read once: the read removes it, as IBM deletes it, and later
    # reads get an empty body, for which the client's ``result()`` returns None.
    body = emulator.store.take_result(job_id) if job.private else emulator.store.results.get(job_id)
    if body is None and job.private and job.status == "Completed":
        return Response(b"", media_type="application/json")
    if body is None:
        # A job that ended without a result answers with its error text, as IBM does: the client
        # reads it for the message of a Failed job and of one cancelled for running too long (1305).
        if job.is_final:
            return PlainTextResponse(job.reason or f"Job {job.status.lower()}")
        raise ApiError(404, f"Job {job_id} has no results yet ({job.status})", CODE_JOB_NOT_FOUND)
    return Response(body, media_type="application/json")


@router.post("/jobs/{job_id}/cancel", status_code=204)
async def cancel_job(job_id: str, emulator: EmulatorDep) -> Response:
    job = emulator.job(job_id)
    if not emulator.queue.cancel(job_id):
        raise ApiError(409, f"Job {job_id} cannot be cancelled: it is {job.status}", CODE_INVALID_STATE)
    return Response(status_code=204)


@router.put("/jobs/{job_id}/tags", status_code=204)
async def replace_tags(job_id: str, request: Request, emulator: EmulatorDep) -> Response:
    emulator.job(job_id)
    tags = json_object(await request.body()).get("tags")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ApiError(400, 'The body must be {"tags": [strings]}', CODE_INVALID_JOB)
    emulator.store.update_job(job_id, tags=tags)
    return Response(status_code=204)


@router.get("/jobs/{job_id}/logs")
async def job_logs(job_id: str, emulator: EmulatorDep) -> PlainTextResponse:
    job = emulator.job(job_id)
    lines = [f"{wire_time(job.created)} INFO job {job.id} queued on {job.backend}"]
    if job.running:
        lines.append(f"{wire_time(job.running)} INFO job started")
    if job.finished:
        lines.append(f"{wire_time(job.finished)} INFO job ended {job.status}: {job.reason or 'ok'}")
    return PlainTextResponse("\n".join(lines) + "\n")


@router.get("/jobs/{job_id}/metrics")
async def job_metrics(job_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    """Timestamps, usage (``pending`` until the job is final, as IBM reports it) and queue position."""
    job = emulator.job(job_id)
    position = emulator.queue.positions().get(job_id)
    start = emulator.queue.estimated_start(job, position)
    return {
        "timestamps": {
            "created": wire_time(job.created),
            "running": wire_time(job.running),
            "finished": wire_time(job.finished),
        },
        "usage": {
            "quantum_seconds": job.quantum_seconds,
            "seconds": job.quantum_seconds,
            "qpu_charge_time_seconds": job.quantum_seconds,
            "status": "complete" if job.is_final else "pending",
        },
        "executions": 1 if job.status == "Completed" else 0,
        "qiskit_version": QISKIT_VERSION,
        "position_in_queue": position,
        "position_in_provider": position,
        "estimated_start_time": wire_time(start) if not job.is_final else None,
        "estimated_completion_time": None,
    }
