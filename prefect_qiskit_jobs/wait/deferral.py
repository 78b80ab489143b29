"""Deferred waits: a flow run suspends while its jobs queue, and the resumer brings it back.

A wait keeps its flow process (and the worker slot or pod under it) alive for as long as IBM
queues the jobs: hours of infrastructure held to watch a queue. ``suspend_until_final`` instead
records on Prefect what a resumer needs and suspends the run (``suspend_flow_run``: the process
exits, the slot is free; what it leaves is not garbage-collected at exit, so it goes at once).
Everything lives on Prefect, nothing in the resumer:

- the run carries the tag ``prefect-qiskit-deferred``;
- its label ``prefect-qiskit-jobs.awaiting`` lists the job ids, ``prefect-qiskit-jobs.credentials``
  names the saved credentials block (empty: the resumer's own credentials), and
  ``prefect-qiskit-jobs.cancel-on-timeout`` says whether a timed-out suspension cancels them.

The resumer (``run_resumer``, ``prefect-qiskit-jobs resumer``) lists the tagged runs each cycle
and reads their jobs in one listing per run; the pending jobs of a Paused run go to the process's
job watcher, which reads them at least once a cycle, and the run is resumed the moment they have
all ended (not at the next cycle). A resumed run re-executes from the top: its submits adopt
their jobs (same idempotency keys), its ``suspend_until_final`` returns at once, and its fetches
read result storage. A run cancelled while suspended (Prefect moves it straight to Cancelled; no
hook runs), or failed by its suspension's timeout, has its pending jobs cancelled by
``Layer.RESUMER``, once. Each action
runs under a leased one-slot Prefect concurrency limit per IBM account and re-reads the run's
state and jobs inside it, so two resumers act once (cleaning up shares the reaper's limit, so a
resumer and a reaper never both cancel a run's jobs); a resumer killed mid-cycle leaves the tag
in place and the next cycle (of any resumer) finishes the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import Pause
from prefect.flow_runs import asuspend_flow_run, suspend_flow_run
from prefect.logging import get_logger
from prefect.logging.loggers import flow_run_logger
from prefect.utilities.asyncutils import run_coro_as_sync

from prefect_qiskit_jobs.blocks import CredentialsLike, IBMQuantumCredentials, aresolve_credentials
from prefect_qiskit_jobs.calls import run_on_own_loop
from prefect_qiskit_jobs.cancel.fan_out import Layer, cancel_jobs
from prefect_qiskit_jobs.cancel.reaper import run_cancels_limit
from prefect_qiskit_jobs.errors import ConfigurationError
from prefect_qiskit_jobs.ibm.gateway import IQPGateway, gateway_for
from prefect_qiskit_jobs.ibm.tags import flow_run_tag, owned_by
from prefect_qiskit_jobs.limits.slots import account_limit_name, held_alone
from prefect_qiskit_jobs.logs import id_list, log_to_run, run_label
from prefect_qiskit_jobs.models import JobRef, JobSnapshot, PollPolicy, job_id_of
from prefect_qiskit_jobs.wait.schedule import Outage, listing_tag
from prefect_qiskit_jobs.wait.watcher import JobWatcher

DEFERRED_TAG = "prefect-qiskit-deferred"
AWAITING_LABEL = "prefect-qiskit-jobs.awaiting"
CREDENTIALS_LABEL = "prefect-qiskit-jobs.credentials"
CANCEL_ON_TIMEOUT_LABEL = "prefect-qiskit-jobs.cancel-on-timeout"
RESUME_LIMIT_PREFIX = "ibm-quantum-resumer-resume-"
RESUMER_EVERY = 10.0
RUNS_PAGE = 200
# Runs in these states had their suspension end without a resume: their jobs are cleaned up.
ENDED_UNRESUMED = frozenset({StateType.CANCELLED, StateType.FAILED, StateType.CRASHED})

logger = get_logger("prefect_qiskit_jobs.resumer")


# ----- the flow's side ---------------------------------------------------------------------------
def _suspendable_run() -> Any:
    """The flow run being executed here, if it may suspend; a clear error before any request if not."""
    if TaskRunContext.get() is not None:
        raise ConfigurationError("suspend_until_final cannot be called inside a task: call it from the flow")
    context = FlowRunContext.get()
    flow_run = context.flow_run if context else None
    if flow_run is None:
        raise ConfigurationError("suspend_until_final must be called inside a flow run")
    if flow_run.deployment_id is None:
        raise ConfigurationError(
            "suspend_until_final needs a deployment run (a suspended run is resumed by rescheduling "
            "its deployment); run the flow from a deployment, or wait with wait_for_jobs"
        )
    return flow_run


def _ids_of(jobs: Sequence[JobRef | str]) -> list[str]:
    return list(dict.fromkeys(job_id_of(job) for job in jobs))


def _block_name(credentials: CredentialsLike) -> str:
    """The saved block's name, for the resumer to load; empty for a block not saved or the environment."""
    if isinstance(credentials, str):
        return credentials
    if isinstance(credentials, IBMQuantumCredentials) and not credentials._is_anonymous:
        return credentials._block_document_name or ""
    return ""


def pause_key(job_ids: Sequence[str]) -> str:
    """The suspension's key: one per set of jobs, the same when the resumed run calls again.

    Prefect's default key counts the run's suspends; a call that returned at once (its jobs
    final) would not count, and a later call would reuse a fired key and not suspend.

    Example:
        >>> pause_key(["b", "a"]) == pause_key(["a", "b"])
        True
    """
    digest = hashlib.sha256("\0".join(sorted(job_ids)).encode()).hexdigest()[:32]
    return f"prefect-qiskit-jobs-{digest}"


async def read_final(gateway: IQPGateway, jobs: Sequence[JobRef | str]) -> dict[str, JobSnapshot]:
    """The jobs' current snapshots, in batches: one listing per flow run (or process) tag they carry.

    A job that no listing found (a bare id, or a job from elsewhere) is read alone.
    """
    refs = [job for job in jobs if isinstance(job, JobRef)]
    tags = {tag for job in refs if (tag := listing_tag(job.tags)) is not None}
    return await _read_listed(gateway, sorted(tags), _ids_of(jobs))


async def _read_listed(
    gateway: IQPGateway, tags: Sequence[str], job_ids: Sequence[str]
) -> dict[str, JobSnapshot]:
    wanted = set(job_ids)
    found: dict[str, JobSnapshot] = {}
    for tag in tags:
        listed, _ = await anyio.to_thread.run_sync(
            functools.partial(gateway.list_since, tag=tag, backend=None, created_after=None, all_pages=True)
        )
        found.update({job.job_id: job for job in listed if job.job_id in wanted})
    for job_id in job_ids:
        if job_id not in found:
            found[job_id] = await anyio.to_thread.run_sync(gateway.read, job_id)
    return found


Labels = dict[str, bool | int | float | str]


def _record_of(ids: Sequence[str], credentials: CredentialsLike, cancel_on_timeout: bool) -> Labels:
    return {
        AWAITING_LABEL: ",".join(ids),
        CREDENTIALS_LABEL: _block_name(credentials),
        CANCEL_ON_TIMEOUT_LABEL: cancel_on_timeout,
    }


def _recorded(flow_run: Any, record: Labels) -> bool:
    """Whether the run started with this deferral recorded: it is being re-executed after a resume."""
    labels = flow_run.labels or {}
    return DEFERRED_TAG in flow_run.tags and all(labels.get(key) == value for key, value in record.items())


async def _write_record(client: PrefectClient, flow_run: Any, record: Labels | None) -> None:
    """Put the deferral ``record`` on the run, or take it off (None): its labels, then its tag.

    The tags are the run's own as it started (a suspension's run is not retagged meanwhile), so
    no read comes first; the resumer acts only on a Paused run, so the order of the two is free.
    One after the other: sent together, two writes to one flow run wait on each other in the
    server's database (about 2 s on SQLite), where one after the other they take milliseconds.
    """
    tags = [tag for tag in flow_run.tags if tag != DEFERRED_TAG] + ([DEFERRED_TAG] if record else [])
    await client.update_flow_run_labels(flow_run.id, record or {AWAITING_LABEL: "", CREDENTIALS_LABEL: ""})
    await client.update_flow_run(flow_run.id, tags=tags)


async def _prepare(
    flow_run: Any, jobs: Sequence[JobRef | str], credentials: CredentialsLike, cancel_on_timeout: bool
) -> tuple[list[JobSnapshot], str | None]:
    """The snapshots if every job is final (key None); otherwise record the deferral and return its key.

    The jobs are read while the deferral is recorded (their process is held for both): on a
    first execution the jobs are almost always pending, and a record made for jobs found final
    is taken off again. A re-executed run finds its record in place and only reads.
    ``flow_run`` and the run's logger are taken by the caller, in the flow's own thread: the
    sync twin runs this coroutine on another loop.
    """
    ids = _ids_of(jobs)
    record = _record_of(ids, credentials, cancel_on_timeout)
    recording = not _recorded(flow_run, record)
    async with get_client() as client:

        async def read() -> dict[str, JobSnapshot]:
            return await read_final(gateway_for(await aresolve_credentials(credentials)), jobs)

        if not recording:
            snapshots = await read()
        else:
            read_or_error, written = await asyncio.gather(
                read(), _write_record(client, flow_run, record), return_exceptions=True
            )
            error = read_or_error if isinstance(read_or_error, BaseException) else written
            if error is not None:
                # Not suspending: a record left behind would have the resumer act on this run.
                with contextlib.suppress(Exception):
                    await _write_record(client, flow_run, None)
                raise error
            assert not isinstance(read_or_error, BaseException)
            snapshots = read_or_error
        ordered = [snapshots[job_id] for job_id in ids]
        if all(snapshot.status.is_final for snapshot in ordered):
            if recording:
                await _write_record(client, flow_run, None)
            return ordered, None
    pending = [snapshot.job_id for snapshot in ordered if not snapshot.status.is_final]
    flow_run_logger(flow_run).info(
        "Deferring: %s still pending; suspending this run until they end", id_list(pending)
    )
    return ordered, pause_key(ids)


@contextlib.contextmanager
def _exiting_fast() -> Iterator[None]:
    """Once the run is suspended, let its process exit without collecting the objects it leaves.

    A suspended run's process only tears down and exits. At exit Python collects every object
    still tracked (a flow process holds Prefect's and Qiskit's: seconds of CPU on a busy core,
    during which the process still holds its worker slot). Freezing them (``gc.freeze``) leaves
    them out of those collections; the process's memory goes back to the system all the same.
    """
    try:
        yield
    except Pause:
        gc.freeze()
        raise


def _seconds(timeout: float | None) -> int | None:
    return None if timeout is None else max(1, int(timeout))


async def asuspend_until_final(
    jobs: Sequence[JobRef | str],
    credentials: CredentialsLike = None,
    timeout: float | None = None,
    cancel_on_timeout: bool = True,
) -> list[JobSnapshot]:
    """Suspend this deployment run until every job is final; return their snapshots at once if they are.

    The flow process exits while the jobs queue, freeing its worker slot; the resumer
    (``run_resumer``) resumes the run when they have all ended, and the run re-executes from the
    top: its submits adopt their jobs, this call returns the final snapshots, its fetches read
    result storage. Call it from the flow itself, in a deployment run, never inside a task.

    Args:
        jobs: What submit tasks returned, or job ids.
        credentials: An ``IBMQuantumCredentials`` block, a saved block's name (which the resumer
            will load), or None (the environment, for the call and for the resumer).
        timeout: Seconds to stay suspended at most; then Prefect fails the run, and the resumer
            cancels the jobs it submitted unless ``cancel_on_timeout=False``.
        cancel_on_timeout: Whether a timed-out suspension cancels the run's pending jobs.

    Raises:
        ConfigurationError: Outside a deployment run, or inside a task (before any request).

    Example:
        >>> @flow(persist_result=True)
        ... async def nightly():
        ...     jobs = [submit_sampler_job([isa], backend="ibm_brisbane") for _ in range(2)]
        ...     await asuspend_until_final(jobs)  # the process exits here until they end
        ...     return fetch_job_results(jobs)  # doctest: +SKIP
    """
    snapshots, key = await _prepare(_suspendable_run(), jobs, credentials, cancel_on_timeout)
    if key is not None:
        with _exiting_fast():
            await asuspend_flow_run(timeout=_seconds(timeout), key=key)
    return snapshots


def suspend_until_final(
    jobs: Sequence[JobRef | str],
    credentials: CredentialsLike = None,
    timeout: float | None = None,
    cancel_on_timeout: bool = True,
) -> list[JobSnapshot]:
    """The sync twin of ``asuspend_until_final``, for sync flows: the same arguments and behaviour."""
    prepared: tuple[list[JobSnapshot], str | None] = run_coro_as_sync(  # type: ignore[assignment]
        _prepare(_suspendable_run(), jobs, credentials, cancel_on_timeout)
    )
    snapshots, key = prepared
    if key is not None:
        with _exiting_fast():
            suspend_flow_run(timeout=_seconds(timeout), key=key)
    return snapshots


# ----- the resumer -------------------------------------------------------------------------------
@dataclass
class ResumerCycle:
    """What one cycle did: runs resumed, and jobs cancelled for runs that ended suspended."""

    resumed: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)
    cancelled_jobs: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)


def awaited_ids(flow_run: FlowRun) -> list[str]:
    """The job ids a deferred run recorded, from its label."""
    value = str((flow_run.labels or {}).get(AWAITING_LABEL) or "")
    return [job_id for job_id in value.split(",") if job_id]


@dataclass(eq=False)
class _Watch:
    """A Paused run whose pending jobs the process's watcher reads, until they have all ended."""

    flow_run: FlowRun
    gateway: IQPGateway
    pending: set[str]
    handles: list[tuple[str, int]] = field(default_factory=list)


def watch_policy(every: float) -> PollPolicy:
    """How a resumer reads a deferred run's jobs: the watcher's pace, never slower than ``every``.

    The pause between reads, jitter included, stays within ``every`` seconds (so a run is
    resumed at most about ``every`` seconds after its last job ends), and no queue positions
    are read: nobody is shown them.

    Example:
        >>> policy = watch_policy(5)
        >>> policy.cap * (1 + policy.jitter) <= 5
        True
    """
    default = PollPolicy()
    cap = every / (1 + default.jitter)
    return PollPolicy(initial=min(default.initial, cap), cap=cap, queue_position_every=None)


class _Resumer:
    def __init__(
        self, client: PrefectClient, credentials: CredentialsLike, every: float | None = None
    ) -> None:
        self.client = client
        self.credentials = credentials
        self._gateways: dict[str, IQPGateway] = {}
        # With ``every``, a Paused run's pending jobs are handed to the watcher and the run is
        # resumed the moment they have all ended; without, each cycle reads them once.
        self._policy = watch_policy(every) if every is not None else None
        self._watches: dict[str, _Watch] = {}
        self._resuming: set[asyncio.Task[None]] = set()

    async def gateway(self, flow_run: FlowRun) -> IQPGateway:
        name = str((flow_run.labels or {}).get(CREDENTIALS_LABEL) or "")
        if name not in self._gateways:
            self._gateways[name] = gateway_for(await aresolve_credentials(name or self.credentials))
        return self._gateways[name]

    async def fresh(self, flow_run: FlowRun) -> FlowRun | None:
        """The run as it is now, if it is still ours to act on."""
        current = await self.client.read_flow_run(flow_run.id)
        return current if DEFERRED_TAG in current.tags else None

    async def forget(self, flow_run: FlowRun) -> None:
        """Take the tag off (and empty the labels): no resumer acts on this run again."""
        await _write_record(self.client, flow_run, None)

    async def cycle(self) -> ResumerCycle:
        done = ResumerCycle()
        deferred = FlowRunFilter(tags=FlowRunFilterTags(all_=[DEFERRED_TAG]))
        runs: list[FlowRun] = []
        while page := await self.client.read_flow_runs(
            flow_run_filter=deferred, limit=RUNS_PAGE, offset=len(runs)
        ):
            runs += page
            if len(page) < RUNS_PAGE:
                break
        paused = {str(run.id) for run in runs if run.state is not None and run.state.is_paused()}
        for run_id in set(self._watches) - paused:  # resumed elsewhere, cancelled or timed out
            self.unwatch(run_id)
        for flow_run in runs:
            try:
                await self.act(flow_run, done)
            except Exception:  # one run's trouble must not stop the others; the next cycle retries
                logger.exception("Resumer: could not handle flow run %s", flow_run.id)
        return done

    async def act(self, flow_run: FlowRun, done: ResumerCycle) -> None:
        state = flow_run.state.type if flow_run.state else None
        if state is StateType.PAUSED:
            if str(flow_run.id) in self._watches:
                done.waiting.append(str(flow_run.id))
            else:
                await self.maybe_resume(flow_run, done)
        elif state in ENDED_UNRESUMED:
            await self.clean_up(flow_run, done)
        elif state is StateType.COMPLETED:
            await self.forget(flow_run)  # it ended well: nothing left to do for it

    async def jobs(self, gateway: IQPGateway, flow_run: FlowRun) -> list[JobSnapshot]:
        ids = awaited_ids(flow_run)
        found = await _read_listed(gateway, [flow_run_tag(flow_run.id)], ids)
        return [found[job_id] for job_id in ids]

    async def maybe_resume(self, flow_run: FlowRun, done: ResumerCycle) -> None:
        gateway = await self.gateway(flow_run)
        jobs = await self.jobs(gateway, flow_run)
        pending = [job for job in jobs if not job.status.is_final]
        if not pending:
            if await self.resume(flow_run, gateway, len(jobs)):
                done.resumed.append(str(flow_run.id))
            return
        done.waiting.append(str(flow_run.id))
        if self._policy is not None:
            self.watch(flow_run, gateway, pending)

    async def resume(self, flow_run: FlowRun, gateway: IQPGateway, count: int) -> bool:
        """Resume the run if it is still Paused and ours, under the account's one-slot limit, once."""
        async with held_alone(self.client, account_limit_name(RESUME_LIMIT_PREFIX, gateway.credentials)):
            current = await self.fresh(flow_run)
            if current is None or current.state is None or not current.state.is_paused():
                return False  # another resumer has resumed it, or it ended meanwhile
            response = await self.client.resume_flow_run(flow_run.id)
        said = f"Resumer: all {count} awaited job(s) are final; resume {response.status.value}"
        logger.info("Flow run %s: %s", run_label(flow_run), said)
        log_to_run(flow_run, said)
        return True

    # ----- watching a Paused run's jobs (the watcher's thread tells, this loop acts) -----------
    def watch(self, flow_run: FlowRun, gateway: IQPGateway, pending: Sequence[JobSnapshot]) -> None:
        assert self._policy is not None
        run_id, loop, watcher = str(flow_run.id), asyncio.get_running_loop(), JobWatcher.shared()
        watch = self._watches[run_id] = _Watch(flow_run, gateway, {job.job_id for job in pending})
        instance = gateway.credentials.instance

        def listener(job_id: str) -> Callable[[JobSnapshot | BaseException | Outage], None]:
            def tell(item: JobSnapshot | BaseException | Outage) -> None:
                with contextlib.suppress(RuntimeError):  # the resumer's loop has closed
                    loop.call_soon_threadsafe(self._heard, watch, job_id, item)

            return tell

        refs = [(JobRef.from_snapshot(job, instance=instance), listener(job.job_id)) for job in pending]
        handles = watcher.watch_many(gateway, refs, self._policy)
        watch.handles = [(ref.job_id, handle) for (ref, _), handle in zip(refs, handles, strict=True)]

    def unwatch(self, run_id: str) -> None:
        watch = self._watches.pop(run_id, None)
        if watch is not None:
            JobWatcher.shared().unwatch_many(watch.gateway, watch.handles)

    def unwatch_all(self) -> None:
        for run_id in list(self._watches):
            self.unwatch(run_id)

    def _heard(self, watch: _Watch, job_id: str, item: JobSnapshot | BaseException | Outage) -> None:
        run_id = str(watch.flow_run.id)
        if self._watches.get(run_id) is not watch:
            return  # a late word for a watch that has ended
        if isinstance(item, BaseException):  # IBM stayed unreachable: the next cycle reads again
            logger.warning("Resumer: could not read the jobs of flow run %s: %s", run_id, item)
            self.unwatch(run_id)
        elif isinstance(item, JobSnapshot) and item.status.is_final:
            watch.pending.discard(job_id)
            if not watch.pending:
                self.unwatch(run_id)
                task = asyncio.get_running_loop().create_task(self._resume_watched(watch))
                self._resuming.add(task)
                task.add_done_callback(self._resuming.discard)

    async def _resume_watched(self, watch: _Watch) -> None:
        try:
            await self.resume(watch.flow_run, watch.gateway, len(awaited_ids(watch.flow_run)))
        except Exception:  # the run stays tagged and Paused: the next cycle reads its jobs again
            logger.exception("Resumer: could not resume flow run %s", watch.flow_run.id)

    async def clean_up(self, flow_run: FlowRun, done: ResumerCycle) -> None:
        gateway = await self.gateway(flow_run)
        async with held_alone(self.client, run_cancels_limit(gateway.credentials)):
            current = await self.fresh(flow_run)
            if current is None:
                return  # another resumer has cleaned it up
            state = current.state.type if current.state else None
            labels = current.labels or {}
            cancel = state is not StateType.FAILED or labels.get(CANCEL_ON_TIMEOUT_LABEL, True) is not False
            if cancel:
                jobs = await self.jobs(gateway, current)
                mine = [job for job in jobs if not job.status.is_final and owned_by(job.tags, current.id)]
                reports = await anyio.to_thread.run_sync(
                    functools.partial(
                        cancel_jobs, gateway, mine, Layer.RESUMER, logger.info, end_sessions=True
                    )
                )
                done.cancelled_jobs += [report.job_id for report in reports]
                for report in reports:
                    log_to_run(current, report.describe(Layer.RESUMER), also=logger)
            await self.forget(current)
        logger.info(
            "Resumer: flow run %s ended %s while suspended; cleaned up",
            run_label(flow_run),
            state and state.value,
        )
        done.cleaned.append(str(flow_run.id))


async def aresume_cycle(credentials: CredentialsLike = None) -> ResumerCycle:
    """One pass of the resumer: resume what is ready, clean up what ended suspended."""
    async with get_client() as client:
        return await _Resumer(client, credentials).cycle()


def resume_cycle(credentials: CredentialsLike = None) -> ResumerCycle:
    """One pass of the resumer, for sync code; ``aresume_cycle`` is its awaitable twin."""
    return run_on_own_loop(aresume_cycle(credentials))


async def arun_resumer(
    credentials: CredentialsLike = None, every: float = RESUMER_EVERY, once: bool = False
) -> None:
    """Resume each deferred run the moment its jobs have all ended; clean up runs that ended suspended.

    Every ``every`` seconds a cycle lists the deferred runs (as ``aresume_cycle`` does); the
    pending jobs of each Paused run go to the process's job watcher, which reads them (one
    listing per run) at least every ``every`` seconds, and the run is resumed as soon as a read
    finds them all final, not at the next cycle. Safe to run several at once, and to kill at
    any point: its whole state is on Prefect.

    Args:
        credentials: The credentials for runs that recorded no saved block (default: the environment).
        every: Seconds between cycles, and at most between two reads of a run's jobs.
        once: Run one cycle (no watching) and return.
    """
    if once:
        await aresume_cycle(credentials)
        return
    async with get_client() as client:
        resumer = _Resumer(client, credentials, every)
        try:
            while True:
                try:
                    cycle = await resumer.cycle()
                except Exception as exc:
                    # The Prefect API down past its client's retries (a server restart, an outage):
                    # the runs and their state are on Prefect, so the next cycle picks up from there.
                    logger.warning(
                        "Resumer cycle failed (%s: %s); trying again in %s s", type(exc).__name__, exc, every
                    )
                    await asyncio.sleep(every)
                    continue
                if cycle.resumed or cycle.cleaned:
                    logger.info(
                        "Resumer cycle: resumed %d run(s), cleaned up %d, %d still waiting",
                        len(cycle.resumed),
                        len(cycle.cleaned),
                        len(cycle.waiting),
                    )
                await asyncio.sleep(every)
        finally:
            resumer.unwatch_all()


def run_resumer(
    credentials: CredentialsLike = None, every: float = RESUMER_EVERY, once: bool = False
) -> None:
    """Resume deferred runs whose jobs have ended (blocking); ``arun_resumer`` is its awaitable twin.

    Args:
        credentials: The credentials for runs that recorded no saved block (default: the environment).
        every: Seconds between cycles, and at most between two reads of a run's jobs.
        once: Run one cycle (no watching) and return.
    """
    run_on_own_loop(arun_resumer(credentials, every, once))
