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
new. The flow must make its calls in the same order each time, as any replayed workflow must.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections import OrderedDict

from prefect.context import FlowRunContext, TaskRunContext

from prefect_qiskit_jobs.errors import InvalidJobInputError

_KEY = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Counters of finished flow-run attempts are dropped oldest first beyond this many.
MAX_COUNTED_SCOPES = 4096


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


def call_key(task_name: str) -> str | None:
    """The key of the call being made now of the task named ``task_name``; None outside any run.

    The task's name, not Prefect's ``task_key``: that one hashes the task's source, so it would
    change when the package is upgraded between a run and its re-run.
    """
    parent = TaskRunContext.get()
    if parent is not None:
        task_run = parent.task_run
        return _counted(("task-run", task_run.id), task_run.run_count, task_name)
    context = FlowRunContext.get()
    if context is not None and context.flow_run is not None:
        flow_run = context.flow_run
        return _counted(("flow-run", flow_run.id), flow_run.run_count, task_name)
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
