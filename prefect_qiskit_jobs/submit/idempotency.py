"""Idempotency keys: one IBM job per submit call, however often Prefect runs that call again.

Prefect runs the same code again in three ways: a task retry (same task run, next attempt), a
flow-run retry, and a re-run of the same flow run from the top (a resumed run). A submit's key
must be the same each time, or each attempt submits another job while the first keeps running;
and two different submits must never share one, or the second adopts the first's job.

So a key is made from *where the call was made*, at the moment it is made: the flow run, the
task's name, and how many calls of that task the flow run had made before (the n-th call of the
task in the run). Prefect 3.9's own ``dynamic_key`` is a random UUID for most calls, so the count
is kept here. It is taken when the flow calls the task, not when the task body runs, because
``.submit()`` and ``.map()`` start bodies on threads in no fixed order. A call made inside another
task run counts within that task run instead (stable across that task's retries). A submit that
makes several jobs numbers them (``job_key(call_key, index)``). Outside any run, every call is
new: it gets a fresh key. The flow must make its calls in the same order each time, as any replayed
workflow must.

Looking a key up at IBM costs a listing per job, so it is skipped when nothing can have used the key
yet: the call was stamped in this process, in a scope running for the first time (``first_execution``)
or with a fresh key, and the submit's body is the first to claim it (``FirstRuns``). A task retry, a
flow-run retry or re-run, a run resumed after a suspension, a body running in another process, and a
key the user gave all look the key up, as before.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections import OrderedDict

from prefect.client.schemas.objects import FlowRun
from prefect.context import FlowRunContext, TaskRunContext

from prefect_qiskit_jobs.errors import InvalidJobInputError

_KEY = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Counters of finished flow-run attempts are dropped oldest first beyond this many.
MAX_COUNTED_SCOPES = 4096
# Keys stamped for a first execution whose body never claimed them are dropped oldest first beyond this.
MAX_FIRST_RUN_KEYS = 65536


def check_idempotency_key(key: str) -> str:
    """Return ``key`` if it can be an idempotency key; raise before any request otherwise."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidJobInputError(
            f"idempotency_key {key!r} must be 1 to 64 letters, digits, '.', '_', ':' or '-'"
        )
    return key


def derive_key(*parts: object) -> str:
    """A short, stable key from ``parts`` (pure): the same parts give the same key in any process.

    Example:
        >>> derive_key("flow-run", "f-1", "submit-sampler-job", 0) == derive_key(
        ...     "flow-run", "f-1", "submit-sampler-job", 0
        ... )
        True
        >>> len(derive_key("anything"))
        32
    """
    return hashlib.sha256("\0".join(str(part) for part in parts).encode()).hexdigest()[:32]


class CallCounter:
    """Numbers the calls of each task within one scope (a flow-run attempt), in the order made.

    Example:
        >>> counter = CallCounter()
        >>> [counter.next(("run", 1), "submit"), counter.next(("run", 1), "submit")]
        [0, 1]
        >>> counter.next(("run", 2), "submit")  # the next attempt counts from the start again
        0
    """

    def __init__(self, max_scopes: int = MAX_COUNTED_SCOPES) -> None:
        self._counts: OrderedDict[tuple[object, ...], dict[str, int]] = OrderedDict()
        self._max_scopes = max_scopes
        self._lock = threading.Lock()

    def next(self, scope: tuple[object, ...], name: str) -> int:
        with self._lock:
            counts = self._counts.get(scope)
            if counts is None:
                counts = self._counts[scope] = {}
                while len(self._counts) > self._max_scopes:
                    self._counts.popitem(last=False)
            number = counts.get(name, 0)
            counts[name] = number + 1
            return number


_calls = CallCounter()


class FirstRuns:
    """Keys this process stamped on calls that no earlier execution can have submitted under.

    The submit's body claims its key once, before its first request: only the first body to run
    with the key finds it, so a task retry (same key, same parameters) looks the key up at IBM.
    Stamping a key again where an earlier execution is possible forgets it, so a stale entry from an
    execution whose body never started cannot vouch for a later one.

    Example:
        >>> first = FirstRuns()
        >>> first.note("k1", True)
        >>> [first.claim("k1"), first.claim("k1"), first.claim("k2")]
        [True, False, False]
    """

    def __init__(self, max_keys: int = MAX_FIRST_RUN_KEYS) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._max_keys = max_keys
        self._lock = threading.Lock()

    def note(self, key: str, first: bool) -> None:
        """Record whether the call stamped with ``key`` can have no job from an earlier execution."""
        with self._lock:
            if not first:
                self._keys.pop(key, None)
                return
            self._keys[key] = None
            while len(self._keys) > self._max_keys:
                self._keys.popitem(last=False)

    def claim(self, key: str) -> bool:
        """Whether ``key`` was noted as new and not claimed before; it is claimed now."""
        with self._lock:
            return self._keys.pop(key, False) is None


_first_runs = FirstRuns()


def first_execution(flow_run: FlowRun) -> bool:
    """Whether this is the flow run's first execution of its code, as its own state tells.

    Prefect counts every entry into Running (``run_count``) except a resume after a pause; a run
    resumed after a suspension runs its code again from the top, and keeps the keys of the pauses it
    took (``pause_keys``). So a run that entered Running once and never paused runs for the first time.
    """
    policy = flow_run.empirical_policy
    return flow_run.run_count == 1 and not policy.pause_keys and not policy.resuming


def stamp_key(task_name: str, fresh: bool = False) -> str:
    """The key of the call being made now of the task named ``task_name``, noted for ``claim_first_run``.

    ``fresh``, or outside any run: a new key (``fresh_key``). Otherwise the call's place in its run
    (``_scoped_call``), new only in a scope running for the first time. The task's name, not
    Prefect's ``task_key``: that one hashes the task's source, so it would change when the package
    is upgraded between a run and its re-run.
    """
    scoped = None if fresh else _scoped_call(task_name)
    key, first = scoped if scoped is not None else (fresh_key(), True)
    _first_runs.note(key, first)
    return key


def claim_first_run(key: str) -> bool:
    """Whether no job can carry ``key`` yet (this process stamped it for a first run); claimed once."""
    return _first_runs.claim(key)


def _scoped_call(task_name: str) -> tuple[str, bool] | None:
    """The call's key and whether its scope runs for the first time; None outside any run."""
    flow_context = FlowRunContext.get()
    flow_run = flow_context.flow_run if flow_context is not None else None
    flow_first = flow_run is None or first_execution(flow_run)
    parent = TaskRunContext.get()
    if parent is not None:
        task_run = parent.task_run
        key = _counted(("task-run", task_run.id), task_run.run_count, task_name)
        return key, flow_first and task_run.run_count == 1
    if flow_run is not None:
        return _counted(("flow-run", flow_run.id), flow_run.run_count, task_name), flow_first
    return None


def _counted(where: tuple[object, ...], attempt: int, task_name: str) -> str:
    number = _calls.next((*where, attempt), task_name)
    return derive_key(*where, task_name, number)


def fresh_key() -> str:
    """A key no other call has: for a fresh job, and for calls outside any run."""
    return uuid.uuid4().hex


def job_key(call: str | None, index: int) -> str:
    """The key of the ``index``-th job a submit call makes, read inside the submit's body.

    ``call`` is the key the call was made with. Without one, a task run outside any flow keys
    its jobs by its own id (stable across its retries), and anything else gets a fresh key.
    """
    if call is None:
        context = TaskRunContext.get()
        if context is None:
            return fresh_key()
        call = derive_key("task-run", context.task_run.id)
    return derive_key(call, index)
