"""The one module that calls qiskit-ibm-runtime: build clients, submit, read, list, fetch, cancel.

Everything here is blocking; async callers run it on worker threads. Reads and cancels go through
the client's ``RuntimeClient`` (its REST layer, with IAM auth and retries) because the service's
job objects drop the status from list answers and would cost one request per job to learn it.
Submits go through ``SamplerV2``/``EstimatorV2``, or the executor-based ``Sampler``/``Estimator``
(``PrimitiveApi``), so that the client encodes pubs and options exactly as it always does, and
results are decoded with the client's decoders for the job's program. The client's exceptions
become this package's here, with the token scrubbed from every message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import json
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

import qiskit_ibm_runtime
import requests
from dateutil import parser as dateparser
from qiskit.primitives import PrimitiveResult
from qiskit_ibm_runtime import Batch, EstimatorV2, QiskitRuntimeService, SamplerV2, Session
from qiskit_ibm_runtime.accounts.exceptions import AccountsError
from qiskit_ibm_runtime.api.client import RuntimeClient
from qiskit_ibm_runtime.api.client_parameters import ClientParameters
from qiskit_ibm_runtime.api.exceptions import RequestsApiError
from qiskit_ibm_runtime.decoders.defaults import DEFAULT_DECODERS
from qiskit_ibm_runtime.decoders.result_decoder import ResultDecoder
from qiskit_ibm_runtime.exceptions import IBMNotAuthorizedError, IBMRuntimeError
from qiskit_ibm_runtime.utils.utils import is_isa_circuit

from .exceptions import (
    ConfigurationError,
    InvalidJobInputError,
    IQPAuthenticationError,
    IQPError,
    IQPUnavailableError,
    JobNotFoundError,
    QiskitJobsError,
)
from .models import JobRef, JobSnapshot, JobStatus, Primitive, PrimitiveApi, check_job_id
from .serializers import DECODING

if TYPE_CHECKING:
    from qiskit.circuit import QuantumCircuit
    from qiskit.transpiler import Target

    from .blocks import IBMQuantumCredentials

TRANSIENT_STATUS = frozenset({-1, 408, 429, 500, 502, 503, 504, 520, 521, 522, 524})
# What IAM and the instance directory answer when they refuse an API key (IAM says 400 for an unknown key).
REFUSED_STATUS = frozenset({400, 401, 403})
PAGE_SIZE = 100
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
READ_TIMEOUT_VARIABLE = "PREFECT_QISKIT_JOBS_READ_TIMEOUT"
# Readings of a listing whose pending set shrank while it was paged (see ``collect_listing``).
LISTING_PASSES = 3

_environment_lock = threading.Lock()


@contextlib.contextmanager
def client_environment(credentials: IBMQuantumCredentials) -> Iterator[None]:
    """Point the client at these credentials' IAM and directory services while it is being built.

    The client reads ``IAM_URL``, ``GLOBAL_SEARCH_URL`` and ``GLOBAL_CATALOG_URL`` from the process
    environment when a service or a REST client is constructed, and keeps what it read. Setting them
    for good would let the last gateway built decide where every later one gets its tokens, so they
    are set for the construction only, one construction at a time, and then put back.
    """
    wanted = credentials.endpoint_environment()
    with _environment_lock:
        saved = {name: os.environ.get(name) for name in wanted}
        os.environ.update(wanted)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def read_timeout() -> float:
    """Seconds to wait for any answer of IBM's job API (``PREFECT_QISKIT_JOBS_READ_TIMEOUT``, default 30).

    The client retries a read that timed out (up to 5 times), so a hung read gives up after at
    most six of these.
    """
    value = os.environ.get(READ_TIMEOUT_VARIABLE)
    try:
        seconds = float(value) if value else READ_TIMEOUT
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise ConfigurationError(f"{READ_TIMEOUT_VARIABLE} must be a positive number of seconds: {value!r}")
    return seconds


class CancelOutcome(str, Enum):
    """What a cancel request achieved."""

    CANCELLED = "cancelled"  # IBM accepted the cancel (204)
    ALREADY_FINAL = "already_final"  # IBM answered 409: the job had ended; nothing to do


class IQPGateway:
    """A client for one set of credentials, shared by every task of the process (see ``gateway_for``)."""

    def __init__(self, credentials: IBMQuantumCredentials) -> None:
        self.credentials = credentials
        self._secret = credentials.token.get_secret_value()
        self._lock = threading.Lock()
        self._service: QiskitRuntimeService | None = None
        self._client: RuntimeClient | None = None
        # The instance's backends by name, as last listed; one listing at a time.
        self._backends: dict[str, Any] = {}
        self._backends_lock = threading.Lock()
        self._targets_loaded: set[str] = set()
        # The client's own Session/Batch objects of the sessions this process opened, by id.
        self._sessions: dict[str, Session] = {}

    # ----- clients -----------------------------------------------------------------------
    def service(self) -> QiskitRuntimeService:
        with self._lock:
            if self._service is None:
                with (
                    self.translated("connect to IBM Quantum Platform", connecting=True),
                    client_environment(self.credentials),
                ):
                    self._service = QiskitRuntimeService(
                        channel=self.credentials.channel,
                        token=self._secret,
                        url=self.credentials.url,
                        instance=self.credentials.instance,
                        verify=self.credentials.verify,
                    )
            return self._service

    def client(self) -> RuntimeClient:
        with self._lock:
            if self._client is None:
                params = ClientParameters(
                    channel=self.credentials.channel,
                    token=self._secret,
                    url=self.credentials.url,
                    instance=self.credentials.instance,
                    verify=self.credentials.verify,
                )
                with client_environment(self.credentials):
                    self._client = RuntimeClient(params)
                # The client sets no read timeout, so one hung answer would hold its thread (and
                # the group it reads) for ever; its session takes a per-request default instead.
                self._client._session._timeout = (CONNECT_TIMEOUT, read_timeout())
            return self._client

    def backend(self, name: str) -> Any:
        """The backend by name, with its target; unknown names fail listing the ones that exist.

        The instance's backends are listed once per gateway, however many submits ask at once,
        and kept. A name missing from that listing is looked up afresh once (a backend added
        since the process started) before it is refused.
        """
        with self._backends_lock:
            if name not in self._backends:
                self._list_backends(f"look up backend {name}")
            if name not in self._backends:
                raise InvalidJobInputError(
                    f"Backend {name!r} does not exist on this instance; "
                    f"available: {', '.join(sorted(self._backends))}"
                )
            backend = self._backends[name]
            if name not in self._targets_loaded:
                # The client reads a backend's properties on first use of its target; do it here,
                # where callers expect I/O, so the backend handed out never blocks an event loop.
                with self.translated(f"read the properties of backend {name}"):
                    _ = backend.target
                self._targets_loaded.add(name)
            return backend

    def _list_backends(self, action: str) -> None:
        """Keep each backend of the instance: one ``GET /backends``, and a configuration read per backend.

        Backends already kept stay the same objects, so a target once loaded is never loaded again.
        """
        service = self.service()
        with self.translated(action):
            for backend in service.backends():
                self._backends.setdefault(backend.name, backend)

    # ----- submit --------------------------------------------------------------------------
    def submit(
        self,
        primitive: Primitive,
        pubs: list[Any],
        backend_name: str,
        options: dict[str, Any],
        tags: list[str],
        primitive_api: PrimitiveApi = PrimitiveApi.V2,
        session_id: str | None = None,
    ) -> JobRef:
        """POST one job (in the session ``session_id`` this process opened); returns once IBM accepted it."""
        backend = self.backend(backend_name)
        mode = backend if session_id is None else self._session(session_id)
        primitive_cls = primitive_class(primitive, primitive_api)
        with self.translated(f"submit a {primitive.value} job to {backend_name}"), warnings.catch_warnings():
            # The V2 primitives announce their successor; the wire format they send is what we target.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"qiskit_ibm_runtime")
            warnings.filterwarnings("ignore", message=r".*is deprecated", category=DeprecationWarning)
            runner = primitive_cls(mode=mode, options=dict(options))
            runner.options.environment.job_tags = list(tags)
            job = runner.run(pubs)
        return JobRef(
            job_id=job.job_id(),
            backend=backend_name,
            primitive=primitive,
            primitive_api=primitive_api,
            instance=self.credentials.instance,
            tags=tuple(tags),
            created_at=datetime.now(timezone.utc),
            # Not job.session_id: outside a session the client GETs the job to learn it is None.
            session_id=session_id,
        )

    # ----- sessions and batches ----------------------------------------------------------------
    def open_session(self, batch: bool, backend_name: str, max_time: int | str | None) -> str:
        """Open a batch or a dedicated session on a backend, as the client's ``Batch``/``Session`` do."""
        backend = self.backend(backend_name)
        kind = Batch if batch else Session
        with self.translated(f"open a {'batch' if batch else 'session'} on {backend_name}"):
            session = kind(backend=backend, max_time=max_time)
        session_id: str | None = session.session_id
        if session_id is None:
            raise InvalidJobInputError(
                f"{backend_name} is a simulator: IBM opens no sessions or batches on it"
            )
        with self._lock:
            self._sessions[session_id] = session
        return session_id

    def _session(self, session_id: str) -> Session:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise InvalidJobInputError(f"Session {session_id} was not opened with these credentials")
        return session

    def close_session(self, session_id: str) -> None:
        """Let the session accept no more jobs (``PATCH``); its jobs run on."""
        session = self._session(session_id)
        with self.translated(f"close session {session_id}"):
            session.close()

    def cancel_session(self, session_id: str) -> CancelOutcome:
        """End a session now, cancelling its pending jobs (``DELETE .../close``); any process may."""
        try:
            with self.translated(f"cancel session {session_id}"):
                self.client().cancel_session(session_id)
        except IQPError as exc:
            if exc.status_code in (404, 409):
                return CancelOutcome.ALREADY_FINAL
            raise
        return CancelOutcome.CANCELLED

    # ----- reads ---------------------------------------------------------------------------
    def read(self, job_id: str) -> JobSnapshot:
        """One job's state (``GET /jobs/{id}``)."""
        check_job_id(job_id)
        with self.translated(f"read job {job_id}", job_id=job_id):
            return snapshot_from_api(self.client().job_get(job_id, exclude_params=True))

    def list_jobs(
        self, *, tags: list[str] | None = None, pending: bool | None = None, limit: int | None = None
    ) -> list[JobSnapshot]:
        """Jobs carrying all ``tags`` (newest first), every page of them (see ``collect_listing``)."""

        def fetch_page(skip: int, page_size: int) -> dict[str, Any]:
            answer: dict[str, Any] = self.client().jobs_get(
                limit=page_size, skip=skip, pending=pending, job_tags=tags
            )
            return answer

        with self.translated("list jobs"):
            return [snapshot_from_api(job) for job in collect_listing(fetch_page, limit=limit)]

    def count_pending(self, tags: list[str]) -> int:
        """How many jobs carrying all ``tags`` (none: every job of the instance) are queued or running.

        One request: a listing of one job, whose ``count`` is the number of all that match.
        """
        with self.translated("count pending jobs"):
            answer = self.client().jobs_get(limit=1, pending=True, job_tags=tags or None)
        return int(answer.get("count", 0))

    def list_since(
        self, *, tag: str, backend: str | None, created_after: datetime | None, all_pages: bool
    ) -> tuple[list[JobSnapshot], bool]:
        """Jobs tagged ``tag`` created since ``created_after``, oldest first: one page, or every page.

        Oldest first and not filtered by status, the listing only grows at its end while it is
        read, so its pages never shift. Returns the jobs and whether they are all there are.
        """
        jobs: list[dict[str, Any]] = []
        with self.translated("list jobs"):
            while True:
                answer = self.client().jobs_get(
                    limit=PAGE_SIZE,
                    skip=len(jobs),
                    backend_name=backend,
                    job_tags=[tag],
                    created_after=created_after,
                    descending=False,
                )
                page = answer.get("jobs") or []
                jobs.extend(page)
                complete = not page or len(jobs) >= int(answer.get("count", 0))
                if complete or not all_pages:
                    return [snapshot_from_api(job) for job in jobs], complete

    def metrics(self, job_id: str) -> dict[str, Any]:
        with self.translated(f"read metrics of job {job_id}", job_id=job_id):
            metrics: dict[str, Any] = self.client().job_metadata(job_id)
            return metrics

    def result(self, job_id: str, program_id: str | None = None) -> PrimitiveResult[Any]:
        """The job's result, decoded with the client's own decoders for its program.

        A job known by its id alone is taken for an ``executor`` job when its result is a quantum
        program result (it names its ``schema_version``), as only those are.
        """
        check_job_id(job_id)
        with self.translated(f"fetch the result of job {job_id}", job_id=job_id):
            raw = self.client().job_results(job_id)
        try:
            result = decode_result(raw, program_id)
        except ValueError:
            result = None
        if not isinstance(result, PrimitiveResult):
            # A job that ended without a result answers with its error text instead.
            raise IQPError(self.scrub(f"IBM sent no result for job {job_id}: {str(raw)[:300]!r}"))
        return result

    def cancel(self, job_id: str) -> CancelOutcome:
        """Ask IBM to cancel; a 409 (the job already ended) is an outcome, not an error."""
        check_job_id(job_id)
        try:
            with self.translated(f"cancel job {job_id}", job_id=job_id):
                self.client().job_cancel(job_id)
        except IQPError as exc:
            if exc.status_code == 409:
                return CancelOutcome.ALREADY_FINAL
            raise
        return CancelOutcome.CANCELLED

    # ----- errors ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def translated(self, action: str, job_id: str | None = None, connecting: bool = False) -> Iterator[None]:
        """Turn the client's exceptions into this package's, never letting the token through.

        ``connecting``: the call builds the service, so a value the client rejects is a setting
        (``ConfigurationError``), not a job input.
        """
        try:
            yield
        except (InvalidJobInputError, IQPError, ConfigurationError):
            raise
        except IBMNotAuthorizedError as exc:
            raise IQPAuthenticationError(
                self.scrub(f"IBM refused the credentials while trying to {action}: {exc}"), 401
            ) from None
        except AccountsError as exc:
            raise self._account_error(action, exc) from None
        except RequestsApiError as exc:
            raise self._api_error(action, exc, job_id) from None
        except IBMRuntimeError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, RequestsApiError):
                raise self._api_error(action, cause, job_id) from None
            message = self.scrub(f"Could not {action}: {exc}")
            if "input" in type(exc).__name__.lower() or "Invalid" in type(exc).__name__:
                raise InvalidJobInputError(message) from None
            raise IQPError(message) from None
        except ValueError as exc:
            kind = ConfigurationError if connecting else InvalidJobInputError
            raise kind(self.scrub(f"Could not {action}: {exc}")) from None
        except Exception as exc:
            if type(exc).__module__.startswith("qiskit_ibm_runtime") or "Account" in type(exc).__name__:
                raise ConfigurationError(self.scrub(f"Could not {action}: {exc}")) from None
            raise

    def _api_error(self, action: str, exc: RequestsApiError, job_id: str | None) -> IQPError:
        status = exc.status_code
        message = self.scrub(f"IBM Quantum Platform could not {action}: {exc}")
        if status == 401:
            return IQPAuthenticationError(message, status)
        if status == 404 and job_id:
            return JobNotFoundError(f"No job {job_id} on this instance", status)
        if status in TRANSIENT_STATUS or "maintenance" in str(exc):
            return IQPUnavailableError(message, status, retry_after=_retry_after(exc))
        return IQPError(message, status)

    def _account_error(self, action: str, exc: AccountsError) -> QiskitJobsError:
        """The client could not list the instances: the key was refused, IBM was unreachable, or else."""
        cause = exc.__cause__
        status = getattr(cause, "code", None)
        detail = self.scrub(f"{exc} ({cause})" if cause is not None else str(exc))
        if status in REFUSED_STATUS:
            return IQPAuthenticationError(
                f"IBM Cloud refused the API key while trying to {action}: {detail}. "
                "Check the token (an IBM Cloud API key) of your IBMQuantumCredentials or QISKIT_IBM_TOKEN",
                status,
            )
        if status in TRANSIENT_STATUS or isinstance(cause, requests.exceptions.ConnectionError):
            return IQPUnavailableError(f"IBM Cloud could not be reached to {action}: {detail}", status)
        return ConfigurationError(f"Could not {action}: {detail}")

    def scrub(self, text: str) -> str:
        """``text`` with the token replaced, for anything that may be shown or logged."""
        return text.replace(self._secret, "***") if self._secret else text


def primitive_class(primitive: Primitive, primitive_api: PrimitiveApi) -> type[Any]:
    """The client's class that submits ``primitive`` jobs through ``primitive_api``.

    Raises ``InvalidJobInputError`` when the installed client has no executor-based primitives.
    """
    if primitive_api is PrimitiveApi.V2:
        v2: type[Any] = SamplerV2 if primitive is Primitive.SAMPLER else EstimatorV2
        return v2
    module_name = f"qiskit_ibm_runtime.executor_{primitive.value}"
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise InvalidJobInputError(
            f"primitive_api='executor' needs qiskit-ibm-runtime 0.50 or later, whose {module_name} "
            f"this one (qiskit-ibm-runtime {qiskit_ibm_runtime.__version__}) lacks; use primitive_api='v2'"
        ) from None
    cls: type[Any] = getattr(module, primitive.value.title())
    return cls


def decode_result(raw: str, program_id: str | None) -> Any:
    """A job's result body, through the client's decoders for ``program_id`` (see ``result``)."""
    if program_id is None:
        parsed = json.loads(raw)
        program_id = "executor" if isinstance(parsed, dict) and "schema_version" in parsed else "sampler"
    decoders = DEFAULT_DECODERS.get(program_id, [ResultDecoder])
    with DECODING:
        result = functools.reduce(
            lambda data, decoder: decoder.decode(data) if decoder.is_applicable(data) else data, decoders, raw
        )
    if isinstance(result, PrimitiveResult) and dataclasses.is_dataclass(result.metadata.get("executor")):
        # The executor Sampler keeps the run's chunk timing as a dataclass, which the client's
        # encoder cannot write; as plain data the result is stored and read back as it came.
        metadata = {**result.metadata, "executor": dataclasses.asdict(result.metadata["executor"])}
        result = PrimitiveResult(list(result), metadata=metadata)
    return result


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc.__cause__, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def collect_listing(
    fetch_page: Callable[[int, int], dict[str, Any]],
    *,
    limit: int | None = None,
    page_size: int = PAGE_SIZE,
    passes: int = LISTING_PASSES,
) -> list[dict[str, Any]]:
    """Every job of IBM's newest-first listing, read page by page with ``fetch_page(skip, limit)``.

    The listing changes while it is read. A job created meanwhile is prepended and pushes the rest
    down, so a job is seen twice (kept once). A job that leaves the listed set (a pending job that
    ends) pulls every later job up one place, and the one that crosses the cursor is never seen; an
    orphan, to the cancellation hooks and the reaper. Only that can make a later page's ``count``
    smaller than an earlier one's, so then the whole listing is read again, up to ``passes`` times
    in all, until a pass sees no shrinking. The answer is the union of the passes: each job once,
    as last seen, newest first (a job that ended between passes keeps the entry it had).

    Pure apart from ``fetch_page``, which answers as IBM does: ``{"jobs": [...], "count": N}``.

    Example:
        >>> jobs = [{"id": f"job-{n}"} for n in range(5)]
        >>> fetch = lambda skip, size: {"jobs": jobs[skip : skip + size], "count": len(jobs)}
        >>> [job["id"] for job in collect_listing(fetch, page_size=2)]
        ['job-0', 'job-1', 'job-2', 'job-3', 'job-4']
    """
    latest: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for _ in range(max(passes, 1)):
        seen, shrank = _read_pass(fetch_page, limit, page_size)
        order = _merge_newest_first(order, [job_id for job_id, _job in seen])
        latest.update(seen)
        if not shrank:
            break
    jobs = [latest[job_id] for job_id in order]
    return jobs if limit is None else jobs[:limit]


def _read_pass(
    fetch_page: Callable[[int, int], dict[str, Any]], limit: int | None, page_size: int
) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
    """One pass over the pages: what it saw, in order, and whether ``count`` shrank on the way."""
    seen: list[tuple[str, dict[str, Any]]] = []
    highest_count: int | None = None
    shrank = False
    while True:
        size = page_size if limit is None else min(page_size, limit - len(seen))
        answer = fetch_page(len(seen), size)
        page = answer.get("jobs") or []
        count = int(answer.get("count", 0))
        shrank = shrank or (highest_count is not None and count < highest_count)
        highest_count = count if highest_count is None else max(highest_count, count)
        seen.extend((job["id"], job) for job in page)
        if not page or len(seen) >= count or (limit is not None and len(seen) >= limit):
            return seen, shrank


def _merge_newest_first(earlier: list[str], later: list[str]) -> list[str]:
    """The ids of two readings of one newest-first listing, each once, in that order.

    ``later``'s order stands; an id only ``earlier`` holds goes right after the nearest id before
    it there that ``later`` holds too (or first, when there is none).
    """
    in_later = set(later)
    after: dict[str | None, list[str]] = {}
    anchor: str | None = None
    for job_id in earlier:
        if job_id in in_later:
            anchor = job_id
        else:
            after.setdefault(anchor, []).append(job_id)
    merged = list(after.get(None, []))
    for job_id in dict.fromkeys(later):
        merged.append(job_id)
        merged.extend(after.get(job_id, []))
    return merged


def snapshot_from_api(job: dict[str, Any]) -> JobSnapshot:
    """A ``JobSnapshot`` from IBM's job JSON (``GET /jobs/{id}`` or an entry of ``GET /jobs``)."""
    state = job.get("state") or {}
    reason_code = state.get("reason_code") or state.get("reasonCode")
    usage = job.get("usage") or {}
    wire_status = str(state.get("status") or job.get("status") or "")
    status = JobStatus.from_api(wire_status, reason_code)
    return JobSnapshot(
        job_id=job["id"],
        backend=job.get("backend"),
        primitive=(job.get("program") or {}).get("id"),
        status=status,
        unrecognised_status=wire_status if status is JobStatus.UNKNOWN else None,
        reason=state.get("reason"),
        reason_code=reason_code,
        created=_parse_time(job.get("created")),
        finished=_parse_time(job.get("ended")),
        quantum_seconds=_quantum_seconds(usage),
        tags=tuple(job.get("tags") or ()),
        session_id=job.get("session_id") or None,
    )


def apply_metrics(snapshot: JobSnapshot, metrics: dict[str, Any]) -> JobSnapshot:
    """Add what only ``/metrics`` tells: queue position, estimated start, run timestamps, usage."""
    stamps = metrics.get("timestamps") or {}
    usage = metrics.get("usage") or {}
    position = metrics.get("position_in_queue")
    return snapshot.model_copy(
        update={
            "position_in_queue": position if snapshot.status is JobStatus.QUEUED else None,
            "estimated_start": _parse_time(metrics.get("estimated_start_time")),
            "running": _parse_time(stamps.get("running")) or snapshot.running,
            "finished": _parse_time(stamps.get("finished")) or snapshot.finished,
            "quantum_seconds": _quantum_seconds(usage, snapshot.quantum_seconds),
        }
    )


def _quantum_seconds(usage: dict[str, Any], default: float | None = None) -> float | None:
    """QPU time as IBM reports it now (``qpu_charge_time_seconds``) or did (``quantum_seconds``)."""
    for name in ("qpu_charge_time_seconds", "quantum_seconds"):
        if usage.get(name) is not None:
            return float(usage[name])
    return default


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        parsed: datetime = dateparser.isoparse(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def isa_problem(circuit: QuantumCircuit, target: Target) -> str:
    """Why ``circuit`` is not ISA for ``target`` (the client's own check), or ``""``."""
    return str(is_isa_circuit(circuit, target))


_gateways: dict[tuple[object, ...], IQPGateway] = {}
_gateways_lock = threading.Lock()


def gateway_for(credentials: IBMQuantumCredentials) -> IQPGateway:
    """The process's gateway for these credentials: one service and one REST client each.

    Blocks of one account with other limits get gateways of their own, since a submit obeys the
    limits of its gateway's credentials.
    """
    limits = (credentials.max_jobs_in_flight, credentials.jobs_per_window, credentials.rate_window_seconds)
    key = (credentials.fingerprint(), *limits)
    with _gateways_lock:
        gateway = _gateways.get(key)
        if gateway is None:
            gateway = _gateways[key] = IQPGateway(credentials)
        return gateway
