"""The runtime API's sessions and batches: open, read, stop accepting jobs, close (cancelling its jobs)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from prefect_qiskit_jobs.emulator import sessions
from prefect_qiskit_jobs.emulator.queue import SESSION_CANCELLED_REASON
from prefect_qiskit_jobs.emulator.store import SessionRecord, new_id, utcnow
from prefect_qiskit_jobs.emulator.traffic import RUNTIME_PREFIX

from .common import (
    CODE_INVALID_JOB,
    CODE_SESSION_CLOSED,
    ApiError,
    Emulator,
    EmulatorDep,
    json_object,
    require_token,
)

router = APIRouter(prefix=RUNTIME_PREFIX, dependencies=[Depends(require_token)])


@router.post("/sessions")
async def create_session(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    body = json_object(await request.body())
    mode = body.get("mode", "dedicated")
    if mode not in ("dedicated", "batch"):
        raise ApiError(400, f"Unknown session mode {mode!r}", CODE_INVALID_JOB)
    backend = body.get("backend")
    if backend is not None:
        if not isinstance(backend, str):
            raise ApiError(400, "'backend' must be a string", CODE_INVALID_JOB)
        emulator.device(backend)
    instance = body.get("instance")
    if instance is not None and not isinstance(instance, str):
        raise ApiError(400, "'instance' must be a string", CODE_INVALID_JOB)
    longest = emulator.config.session_max_ttl
    max_ttl = longest if body.get("max_ttl") is None else body["max_ttl"]
    if not isinstance(max_ttl, int) or isinstance(max_ttl, bool) or max_ttl <= 0:
        raise ApiError(
            400, f"'max_ttl' must be a positive number of seconds, not {max_ttl!r}", CODE_INVALID_JOB
        )
    if max_ttl > longest:
        raise ApiError(400, f"'max_ttl' of {max_ttl} s exceeds the maximum of {longest} s", CODE_INVALID_JOB)
    session = SessionRecord(
        id=new_id(),
        mode=mode,
        backend=backend,
        instance=instance,
        max_ttl=max_ttl,
        interactive_ttl=emulator.config.session_interactive_ttl if mode == "dedicated" else None,
        created=utcnow(),
    )
    emulator.store.put_session(session)
    emulator.queue.notify()  # the scheduler now has this session's end to watch for
    return session.wire()


def _session(emulator: Emulator, session_id: str) -> SessionRecord:
    emulator.queue.settle_sessions()
    session = emulator.store.sessions.get(session_id)
    if session is None:
        raise ApiError(404, f"Session {session_id} not found", CODE_SESSION_CLOSED)
    return session


@router.get("/sessions/{session_id}")
async def session_details(session_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    return _session(emulator, session_id).wire()


@router.patch("/sessions/{session_id}", status_code=204)
async def update_session(session_id: str, request: Request, emulator: EmulatorDep) -> Response:
    _session(emulator, session_id)
    body = json_object(await request.body(), empty=b"{}")
    if not isinstance(body.get("accepting_jobs"), (bool, type(None))):
        raise ApiError(400, "'accepting_jobs' must be true or false", CODE_INVALID_JOB)
    if body.get("accepting_jobs") is False:
        sessions.stop_accepting(emulator.store, session_id)
    return Response(status_code=204)


@router.delete("/sessions/{session_id}/close", status_code=204)
async def cancel_session(session_id: str, emulator: EmulatorDep) -> Response:
    _session(emulator, session_id)
    for job in list(emulator.store.jobs.values()):
        if job.session_id == session_id and not job.is_final:
            emulator.queue.cancel(job.id, reason=SESSION_CANCELLED_REASON)
    sessions.close(emulator.store, session_id)
    return Response(status_code=204)
