"""The HTTP face of the emulator: IAM, Global Search and Catalog, the runtime API and admin routes.

Paths mirror what the unmodified client requests. The runtime API sits under a base path that
contains ``experimental`` so the client uses the URL as given instead of deriving IBM's regional
host from the instance CRN.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs

import anyio
from dateutil import parser as dateparser
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from qiskit import __version__ as QISKIT_VERSION

from . import execution, sessions
from .auth import API_KEY_GRANT, IAM_TOKEN_PATH, TokenIssuer, iam_error
from .catalog import Catalog
from .config import EmulatorConfig, FaultRule
from .queue import SESSION_CANCELLED_REASON, QueueModel
from .store import JobRecord, JobStore, SessionRecord, new_id, utcnow, wire_time
from .traffic import ADMIN_PREFIX, RUNTIME_PREFIX, Traffic, TrafficMiddleware, error_body

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

IAM_PREFIX = "/iam"
SEARCH_PREFIX = "/global-search"
CATALOG_PREFIX = "/global-catalog"
PLAN_ID = "emulator-plan"

# IBM's codes (https://quantum.cloud.ibm.com/docs/errors); 1291/1217 are the emulator's own choices.
CODE_INVALID_JOB = 1002
CODE_BACKEND_NOT_FOUND = 1007
CODE_NOT_AUTHORIZED = 1200
CODE_INVALID_CREDENTIALS = 1201
CODE_JOB_NOT_FOUND = 1291
CODE_SESSION_CLOSED = 1217
CODE_INVALID_STATE = 1300


class ApiError(Exception):
    """An error answered in IBM's error shape."""

    def __init__(self, status: int, message: str, code: int) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class Emulator:
    """The state of one running emulator, shared by its routes."""

    config: EmulatorConfig
    catalog: Catalog
    store: JobStore
    queue: QueueModel
    traffic: Traffic = field(default_factory=Traffic)
    issuer: TokenIssuer = field(init=False)

    def __post_init__(self) -> None:
        self.issuer = TokenIssuer(self.config.token_lifetime, self.store.secret("token-signing-key"))

    def job(self, job_id: str) -> JobRecord:
        job = self.store.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"Job {job_id} not found", CODE_JOB_NOT_FOUND)
        return job


def _emulator(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


EmulatorDep = Annotated[Emulator, Depends(_emulator)]


def _require_token(request: Request, emulator: EmulatorDep) -> None:
    if not emulator.issuer.verify(request.headers.get("authorization")):
        raise ApiError(401, "Unauthorized: a valid IAM bearer token is required", CODE_INVALID_CREDENTIALS)
    crn = request.headers.get("service-crn")
    if crn is not None and crn != emulator.config.instance_crn:
        raise ApiError(403, f"You are not authorized to use instance {crn}", CODE_NOT_AUTHORIZED)


# ----- IAM, Global Search, Global Catalog ----------------------------------------------------
iam = APIRouter(prefix=IAM_PREFIX)


@iam.post(IAM_TOKEN_PATH)
async def exchange_api_key(request: Request, emulator: EmulatorDep) -> JSONResponse:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    grant_type, apikey = form.get("grant_type", [""])[0], form.get("apikey", [""])[0]
    if grant_type != API_KEY_GRANT:
        return JSONResponse(iam_error(f"Unsupported grant type {grant_type!r}"), status_code=400)
    if not emulator.config.accepts(apikey):
        return JSONResponse(iam_error("Provided API key could not be found."), status_code=400)
    return JSONResponse(emulator.issuer.issue("emulator-user"))


directory = APIRouter()


@directory.post(f"{SEARCH_PREFIX}/v3/resources/search")
async def search_instances(request: Request, emulator: EmulatorDep) -> JSONResponse:
    if not emulator.issuer.verify(request.headers.get("authorization")):
        return JSONResponse(iam_error("Unauthorized"), status_code=401)
    item = {
        "crn": emulator.config.instance_crn,
        "name": "emulator-instance",
        "service_plan_unique_id": PLAN_ID,
        "doc": {"extensions": {"backends": [d.name for d in emulator.catalog]}},
        "tags": [],
    }
    return JSONResponse({"items": [item], "search_cursor": None, "limit": 100})


@directory.get(CATALOG_PREFIX + "/{plan_id}")
async def catalog_entry(plan_id: str) -> JSONResponse:
    if plan_id != PLAN_ID:
        return JSONResponse({"message": "not found"}, status_code=404)
    return JSONResponse(
        {
            "id": PLAN_ID,
            "overview_ui": {"en": {"display_name": "Open"}},
            "metadata": {"pricing": {"type": "free"}},
        }
    )


# ----- runtime API ---------------------------------------------------------------------------
runtime = APIRouter(prefix=RUNTIME_PREFIX, dependencies=[Depends(_require_token)])


def _device(emulator: Emulator, name: str) -> Any:
    device = emulator.catalog.get(name)
    if device is None:
        raise ApiError(404, f"Backend {name} not found", CODE_BACKEND_NOT_FOUND)
    return device


@runtime.get("/backends")
async def list_backends(emulator: EmulatorDep) -> dict[str, Any]:
    return {"devices": [d.list_entry(emulator.queue.queue_length(d.name)) for d in emulator.catalog]}


@runtime.get("/backends/{name}/configuration")
async def backend_configuration(name: str, emulator: EmulatorDep) -> dict[str, Any]:
    configuration: dict[str, Any] = _device(emulator, name).configuration
    return configuration


@runtime.get("/backends/{name}/properties")
async def backend_properties(name: str, emulator: EmulatorDep) -> dict[str, Any]:
    properties: dict[str, Any] = _device(emulator, name).current_properties()
    return properties


@runtime.get("/backends/{name}/status")
async def backend_status(name: str, emulator: EmulatorDep) -> dict[str, Any]:
    status: dict[str, Any] = _device(emulator, name).status(emulator.queue.queue_length(name))
    return status


@runtime.get("/instances/usage")
async def instance_usage(emulator: EmulatorDep) -> dict[str, Any]:
    consumed = sum(j.quantum_seconds for j in emulator.store.jobs.values())
    return {
        "instance_id": emulator.config.instance_crn,
        "plan_id": PLAN_ID,
        "usage_consumed_seconds": round(consumed, 3),
        "usage_limit_seconds": None,
        "usage_limit_reached": False,
        "usage_period": {"start_time": None, "end_time": None},
    }


def _parse_job_request(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "The request body is not valid JSON", CODE_INVALID_JOB) from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object", CODE_INVALID_JOB)
    for key, kind in (("program_id", str), ("backend", str), ("params", dict)):
        if not isinstance(body.get(key), kind):
            raise ApiError(400, f"The request body needs {key!r} ({kind.__name__})", CODE_INVALID_JOB)
    tags = body.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ApiError(400, "'tags' must be a list of strings", CODE_INVALID_JOB)
    if not isinstance(body.get("session_id"), (str, type(None))):
        raise ApiError(400, "'session_id' must be a string", CODE_INVALID_JOB)
    return body


@runtime.post("/jobs")
async def create_job(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    body = _parse_job_request(await request.body())
    program_id, backend = body["program_id"], body["backend"]
    if program_id not in execution.PROGRAMS:
        raise ApiError(404, f"Program {program_id} not found", CODE_INVALID_JOB)
    device = emulator.catalog.get(backend)
    if device is None:
        raise ApiError(400, f"Backend {backend} not found", CODE_BACKEND_NOT_FOUND)
    session_id = body.get("session_id")
    if session_id is not None:
        session = emulator.store.sessions.get(session_id)
        if session is None:
            raise ApiError(400, f"Session {session_id} not found", CODE_SESSION_CLOSED)
        if not session.accepting_jobs or session.state == "closed":
            raise ApiError(400, f"Session {session_id} is closed and accepts no jobs", CODE_SESSION_CLOSED)
        if session.backend and session.backend != backend:
            raise ApiError(
                400, f"Session {session_id} runs on {session.backend}, not {backend}", CODE_INVALID_JOB
            )
    params_json = json.dumps(body["params"])

    def check() -> None:
        execution.validate(execution.decode_params(program_id, params_json), device)

    try:
        await anyio.to_thread.run_sync(check)
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
    )
    emulator.store.put_job(job)
    emulator.queue.notify()
    return {"id": job.id, "backend": job.backend, "session_id": job.session_id}


def _as_utc(text: str, name: str) -> datetime:
    try:
        moment: datetime = dateparser.isoparse(text)
    except ValueError:
        raise ApiError(
            400, f"'{name}' must be an ISO 8601 date-time, not {text!r}", CODE_INVALID_JOB
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@runtime.get("/jobs")
async def list_jobs(
    emulator: EmulatorDep,
    limit: Annotated[int | None, Query(ge=1)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    backend: str | None = None,
    pending: str | None = None,
    program: str | None = None,
    tags: Annotated[list[str] | None, Query()] = None,
    session_id: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    sort: str | None = None,
    exclude_params: str | None = None,
) -> dict[str, Any]:
    jobs = list(emulator.store.jobs.values())
    if backend:
        jobs = [j for j in jobs if j.backend == backend]
    if pending is not None:
        want_pending = pending.lower() == "true"
        jobs = [j for j in jobs if (not j.is_final) == want_pending]
    if program:
        jobs = [j for j in jobs if j.program_id == program]
    if tags:
        jobs = [j for j in jobs if set(tags) <= set(j.tags)]
    if session_id:
        jobs = [j for j in jobs if j.session_id == session_id]
    if created_after:
        after = _as_utc(created_after, "created_after")
        jobs = [j for j in jobs if j.created >= after]
    if created_before:
        before = _as_utc(created_before, "created_before")
        jobs = [j for j in jobs if j.created <= before]
    jobs.sort(key=lambda j: (j.created, j.id), reverse=(sort or "DESC").upper() != "ASC")
    page = jobs[offset : offset + limit if limit else None]
    include_params = (exclude_params or "false").lower() != "true"
    return {
        "jobs": [j.wire(include_params) for j in page],
        "count": len(jobs),
        "limit": limit,
        "offset": offset,
    }


@runtime.get("/jobs/{job_id}")
async def get_job(job_id: str, emulator: EmulatorDep, exclude_params: str | None = None) -> dict[str, Any]:
    return emulator.job(job_id).wire(include_params=(exclude_params or "false").lower() != "true")


@runtime.delete("/jobs/{job_id}", status_code=204)
async def delete_job(job_id: str, emulator: EmulatorDep) -> Response:
    job = emulator.job(job_id)
    if not job.is_final:
        emulator.queue.cancel(job_id, at_once=True)
    emulator.store.delete_job(job_id)
    return Response(status_code=204)


@runtime.get("/jobs/{job_id}/results")
async def job_results(job_id: str, emulator: EmulatorDep) -> Response:
    job = emulator.job(job_id)
    body = emulator.store.results.get(job_id)
    if body is None:
        # A job that ended without a result answers with its error text, as IBM does: the client
        # reads it for the message of a Failed job and of one cancelled for running too long (1305).
        if job.is_final:
            return PlainTextResponse(job.reason or f"Job {job.status.lower()}")
        raise ApiError(404, f"Job {job_id} has no results yet ({job.status})", CODE_JOB_NOT_FOUND)
    return Response(body, media_type="application/json")


@runtime.post("/jobs/{job_id}/cancel", status_code=204)
async def cancel_job(job_id: str, emulator: EmulatorDep) -> Response:
    job = emulator.job(job_id)
    if not emulator.queue.cancel(job_id):
        raise ApiError(409, f"Job {job_id} cannot be cancelled: it is {job.status}", CODE_INVALID_STATE)
    return Response(status_code=204)


@runtime.put("/jobs/{job_id}/tags", status_code=204)
async def replace_tags(job_id: str, request: Request, emulator: EmulatorDep) -> Response:
    emulator.job(job_id)
    try:
        tags = json.loads(await request.body()).get("tags")
    except (ValueError, AttributeError):
        tags = None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ApiError(400, 'The body must be {"tags": [strings]}', CODE_INVALID_JOB)
    emulator.store.update_job(job_id, tags=tags)
    return Response(status_code=204)


@runtime.get("/jobs/{job_id}/logs")
async def job_logs(job_id: str, emulator: EmulatorDep) -> PlainTextResponse:
    job = emulator.job(job_id)
    lines = [f"{wire_time(job.created)} INFO job {job.id} queued on {job.backend}"]
    if job.running:
        lines.append(f"{wire_time(job.running)} INFO job started")
    if job.finished:
        lines.append(f"{wire_time(job.finished)} INFO job ended {job.status}: {job.reason or 'ok'}")
    return PlainTextResponse("\n".join(lines) + "\n")


@runtime.get("/jobs/{job_id}/metrics")
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


@runtime.post("/sessions")
async def create_session(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise ApiError(400, "The request body is not valid JSON", CODE_INVALID_JOB) from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object", CODE_INVALID_JOB)
    mode = body.get("mode", "dedicated")
    if mode not in ("dedicated", "batch"):
        raise ApiError(400, f"Unknown session mode {mode!r}", CODE_INVALID_JOB)
    backend = body.get("backend")
    if backend is not None:
        if not isinstance(backend, str):
            raise ApiError(400, "'backend' must be a string", CODE_INVALID_JOB)
        _device(emulator, backend)
    max_ttl = body.get("max_ttl") or 28800
    if not isinstance(max_ttl, int) or isinstance(max_ttl, bool) or max_ttl <= 0:
        raise ApiError(
            400, f"'max_ttl' must be a positive number of seconds, not {max_ttl!r}", CODE_INVALID_JOB
        )
    session = SessionRecord(
        id=new_id(),
        mode=mode,
        backend=backend,
        instance=body["instance"] if isinstance(body.get("instance"), str) else None,
        max_ttl=max_ttl,
        created=utcnow(),
    )
    emulator.store.put_session(session)
    return session.wire()


def _session(emulator: Emulator, session_id: str) -> SessionRecord:
    session = emulator.store.sessions.get(session_id)
    if session is None:
        raise ApiError(404, f"Session {session_id} not found", CODE_SESSION_CLOSED)
    return session


@runtime.get("/sessions/{session_id}")
async def session_details(session_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    return _session(emulator, session_id).wire()


@runtime.patch("/sessions/{session_id}", status_code=204)
async def update_session(session_id: str, request: Request, emulator: EmulatorDep) -> Response:
    _session(emulator, session_id)
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ApiError(400, "The request body is not valid JSON", CODE_INVALID_JOB) from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object", CODE_INVALID_JOB)
    if body.get("accepting_jobs") is False:
        sessions.stop_accepting(emulator.store, session_id)
    return Response(status_code=204)


@runtime.delete("/sessions/{session_id}/close", status_code=204)
async def cancel_session(session_id: str, emulator: EmulatorDep) -> Response:
    _session(emulator, session_id)
    for job in list(emulator.store.jobs.values()):
        if job.session_id == session_id and not job.is_final:
            emulator.queue.cancel(job.id, reason=SESSION_CANCELLED_REASON)
    sessions.close(emulator.store, session_id)
    return Response(status_code=204)


# ----- admin routes (outside IQP's paths, no auth): what tests and benchmarks read -------------
admin = APIRouter(prefix=ADMIN_PREFIX)


@admin.get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


@admin.get("/stats")
async def stats(emulator: EmulatorDep) -> dict[str, Any]:
    return emulator.traffic.snapshot()


@admin.get("/jobs")
async def all_jobs(emulator: EmulatorDep) -> list[dict[str, Any]]:
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


@admin.post("/reset")
async def reset(emulator: EmulatorDep, jobs: bool = False) -> dict[str, bool]:
    """Zero the counters and restore the configured faults; with ``jobs=true`` also forget every job."""
    emulator.traffic.set_faults(emulator.config.faults, emulator.config.fault_seed)
    emulator.traffic.reset()
    if jobs:
        for job in list(emulator.store.jobs.values()):
            if not job.is_final:
                emulator.queue.cancel(job.id, at_once=True)
        emulator.store.clear()
    return {"ok": True}


@admin.put("/faults")
async def replace_faults(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    """Replace the fault rules in force with ``{"faults": [FaultRule...], "seed": int?}``."""
    try:
        body = json.loads(await request.body() or b"{}")
        rules = tuple(FaultRule.model_validate(rule) for rule in body.get("faults") or ())
        seed = int(body.get("seed", emulator.config.fault_seed))
    except (ValueError, TypeError, AttributeError) as exc:
        raise ApiError(400, f"Invalid fault rules: {exc}", CODE_INVALID_JOB) from None
    emulator.traffic.set_faults(rules, seed)
    return {"faults": [rule.model_dump() for rule in rules], "seed": seed}


@admin.post("/jobs/{job_id}/fail")
async def script_failure(job_id: str, request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    """Make a queued job fail with ``{"reason": ...}`` when it runs."""
    job = emulator.job(job_id)
    body = json.loads(await request.body() or b"{}")
    reason = str(body.get("reason") or "Scripted failure")
    emulator.store.update_job(job.id, scripted_failure=reason)
    return {"id": job.id, "scripted_failure": reason}


@admin.put("/jobs/{job_id}/status")
async def override_status(job_id: str, request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    """Answer ``{"status": ...}`` as the job's status on the job routes until cleared.

    Only the string the job routes answer changes (as when IBM adds a status): the job queues,
    runs and ends as before, and listings filter on its real state.
    """
    job = emulator.job(job_id)
    try:
        status = json.loads(await request.body() or b"{}").get("status")
    except (ValueError, AttributeError):
        status = None
    if not isinstance(status, str) or not status.strip():
        raise ApiError(400, 'Give the status to answer as {"status": "..."}', CODE_INVALID_JOB)
    emulator.store.update_job(job.id, wire_status=status)
    return {"id": job.id, "wire_status": status}


@admin.delete("/jobs/{job_id}/status")
async def clear_status(job_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    """Answer the job's real status again."""
    job = emulator.job(job_id)
    emulator.store.update_job(job.id, wire_status=None)
    return {"id": job.id, "wire_status": None}


@admin.post("/jobs/{job_id}/release")
async def release_job(job_id: str, emulator: EmulatorDep) -> dict[str, str]:
    """Let a queued job start without waiting out the queue delay."""
    emulator.job(job_id)
    emulator.queue.release(job_id)
    return {"id": job_id}


@admin.post("/release")
async def release_all(emulator: EmulatorDep) -> dict[str, int]:
    queued = [j.id for j in emulator.store.jobs.values() if j.status == "Queued"]
    for job_id in queued:
        emulator.queue.release(job_id)
    return {"released": len(queued)}


MAX_BULK_JOBS = 100_000


@admin.post("/jobs")
async def create_jobs(request: Request, emulator: EmulatorDep) -> dict[str, list[str]]:
    """Create ``{"count": n, "backend": ..., "tags": [...]}`` jobs at once, queued as if just submitted.

    Benchmarks wait for thousands of queued jobs; submitting them through the client takes minutes.
    They queue under the configured delay, in the order of the ids answered. Without ``params``
    (``program_id`` defaults to ``sampler``) a job carries no pubs and ends Failed if it runs.
    """
    try:
        body = json.loads(await request.body() or b"{}")
        count, backend = int(body["count"]), str(body["backend"])
        program_id = str(body.get("program_id") or "sampler")
        tags = [str(tag) for tag in body.get("tags") or ()]
        params = json.dumps(body.get("params") or {})
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ApiError(400, f"Give {{count, backend, tags?, params?}}: {exc!r}", CODE_INVALID_JOB) from None
    if not 1 <= count <= MAX_BULK_JOBS:
        raise ApiError(400, f"count must be between 1 and {MAX_BULK_JOBS}", CODE_INVALID_JOB)
    if emulator.catalog.get(backend) is None:
        raise ApiError(400, f"Backend {backend} not found", CODE_BACKEND_NOT_FOUND)
    if program_id not in execution.PROGRAMS:
        raise ApiError(400, f"Program {program_id} not found", CODE_INVALID_JOB)
    now = utcnow()
    eligible = now + timedelta(seconds=emulator.config.queue_delay)
    ids = []
    for index in range(count):
        job = JobRecord(
            id=new_id(),
            backend=backend,
            program_id=program_id,
            created=now + timedelta(microseconds=index),
            tags=list(tags),
            params=params,
            eligible_at=eligible,
        )
        emulator.store.put_job(job)
        ids.append(job.id)
    emulator.queue.notify()
    return {"ids": ids}


# ----- assembly ----------------------------------------------------------------------------
def create_app(config: EmulatorConfig | None = None) -> FastAPI:
    """Build the emulator's ASGI app; its queue model runs for the lifetime of the server."""
    config = config or EmulatorConfig()
    catalog = Catalog(config.backends)
    store = JobStore(config.database)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        queue = QueueModel(store, catalog, config)
        app.state.emulator = Emulator(
            config=config, catalog=catalog, store=store, queue=queue, traffic=traffic
        )
        await queue.start()
        try:
            yield
        finally:
            await queue.stop()
            store.close()

    app = FastAPI(
        title="IBM Quantum Platform emulator",
        lifespan=lifespan,
        openapi_url=f"{ADMIN_PREFIX}/openapi.json",
        docs_url=f"{ADMIN_PREFIX}/docs",
        redoc_url=None,
    )
    traffic = Traffic(config.faults, config.fault_seed)
    app.add_middleware(TrafficMiddleware, traffic=traffic)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.message, exc.code), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(f"Invalid request: {exc.errors()}", CODE_INVALID_JOB), status_code=400)

    for router in (iam, directory, runtime, admin):
        app.include_router(router)
    return app
