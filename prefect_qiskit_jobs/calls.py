"""How the package's tasks are called: keys stamped at call time, mapping over what varies, and
waits that sync and async code both call plainly.

``QiskitTask`` is a Prefect ``Task`` with two habits:

- a submit task gets its idempotency key when the flow *calls* it (directly, ``.submit()`` or
  ``.map()``), passed as its ``idempotency_key`` parameter, so it shows in the UI and survives
  retries (see ``idempotency``);
- a submit started with ``.submit()`` or ``.map()`` inside an ``ibm_batch``/``ibm_session`` block
  is waited for before the block closes the session (see ``sessions``);
- ``.map()`` maps only over the arguments that vary between jobs. Options, credentials, tags and
  poll policies are dicts, blocks, lists and pydantic models, all iterable, which Prefect would
  otherwise map over; they are passed whole to every mapped call, as if wrapped in ``unmapped``.

``DispatchingTask`` is an async task that sync code may call plainly: there it runs its sync twin,
as Prefect's own ``Block.load`` does, so ``wait_for_job(job)`` waits in a sync flow and ``await
wait_for_job(job)`` in an async one.

Example:
    >>> from prefect_qiskit_jobs import submit_sampler_job
    >>> sorted(submit_sampler_job.static_parameters)
    ['credentials', 'options', 'poll', 'tags']
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from prefect import Task, unmapped
from prefect.context import FlowRunContext, TaskRunContext
from prefect.utilities.annotations import allow_failure, opaque, quote
from prefect.utilities.asyncutils import run_coro_as_sync
from prefect.utilities.callables import get_call_parameters
from prefect.utilities.collections import isiterable
from typing_extensions import ParamSpec

from . import sessions
from .idempotency import call_key, fresh_key

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

STATIC_PARAMETERS = ("credentials", "options", "poll", "tags")
KEY_PARAMETER = "idempotency_key"


class QiskitTask(Task[P, R]):
    """A Prefect task that stamps idempotency keys at call time and maps only over what varies."""

    static_parameters: tuple[str, ...] = STATIC_PARAMETERS

    def __init__(self, fn: Callable[P, R], **settings: Any) -> None:
        super().__init__(fn, **settings)
        self.stamps_keys = KEY_PARAMETER in inspect.signature(fn).parameters

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return super().__call__(*args, **self._stamped(kwargs))

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        future = super().submit(*args, **self._stamped(kwargs))
        if self.stamps_keys:
            sessions.track(future)  # leaving an ibm_batch/ibm_session block waits for it
        return future

    def map(self, *args: Any, **kwargs: Any) -> Any:
        options = {
            name: kwargs.pop(name) for name in ("return_state", "wait_for", "deferred") if name in kwargs
        }
        parameters = get_call_parameters(self.fn, args, kwargs, apply_defaults=False)
        for name in self.static_parameters:
            if name in parameters and not isinstance(parameters[name], unmapped):
                parameters[name] = unmapped(parameters[name])
        if self.stamps_keys and parameters.get(KEY_PARAMETER) is None:
            fresh = parameters.get("fresh")
            if isinstance(fresh, unmapped):
                fresh = fresh.value
            if isiterable(fresh):
                raise TypeError("fresh= of a mapped submit is one bool for every call")
            parameters[KEY_PARAMETER] = [
                fresh_key() if fresh else call_key(self.name) for _ in range(_map_length(parameters))
            ]
        futures = super().map(**parameters, **options)
        if self.stamps_keys:
            sessions.track(futures)
        return futures

    def with_options(self, **settings: Any) -> Any:
        """Prefect's ``with_options``, keeping this class (Prefect's builds a plain ``Task``)."""
        changed: Any = super().with_options(**settings)
        changed.__class__ = type(self)
        changed.static_parameters = self.static_parameters
        changed.stamps_keys = self.stamps_keys
        return changed

    def _stamped(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.stamps_keys and kwargs.get(KEY_PARAMETER) is None:
            kwargs[KEY_PARAMETER] = fresh_key() if kwargs.get("fresh") else call_key(self.name)
        return kwargs


def _map_length(parameters: dict[str, Any]) -> int:
    """How many calls ``.map()`` will make: the length of its iterable, non-static arguments."""
    for name, value in list(parameters.items()):
        wrapped = isinstance(value, (allow_failure, opaque, quote))
        inner = value.unwrap() if wrapped else value
        if isinstance(inner, unmapped) or not isiterable(inner):
            continue
        if not hasattr(inner, "__len__"):  # a generator: read it once, here, and hand on the list
            inner = list(inner)
            parameters[name] = value.rewrap(inner) if wrapped else inner
        return len(inner)
    return 0


class DispatchingTask(QiskitTask[P, R]):
    """An async task whose plain call from sync code runs it as a sync task instead.

    The sync twin runs the same coroutine function on an event loop of its own, in the calling
    thread (``run_on_own_loop``), under the same signature. ``.submit()`` and ``.map()`` keep the
    async task: Prefect runs those on worker threads anyway.
    """

    def __init__(self, fn: Callable[P, R], **settings: Any) -> None:
        super().__init__(fn, **settings)

        @functools.wraps(fn)
        def run_synchronously(*args: Any, **kwargs: Any) -> Any:
            return run_on_own_loop(fn(*args, **kwargs))  # type: ignore[arg-type]

        self.sync_twin: QiskitTask[..., Any] = QiskitTask(run_synchronously, **settings)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if in_async_context():
            return super().__call__(*args, **kwargs)
        return self.sync_twin(*args, **kwargs)

    def with_options(self, **settings: Any) -> Any:
        changed = super().with_options(**settings)
        changed.sync_twin = self.sync_twin.with_options(**settings)
        return changed


def in_async_context() -> bool:
    """Whether the caller is async code: an async task or flow run, or else a running event loop.

    The same rule as Prefect's own sync/async dispatch, so a wait behaves as ``Block.load`` does.
    """
    run = TaskRunContext.get() or FlowRunContext.get()
    parent = getattr(run, "task", None) or getattr(run, "flow", None)
    if parent is not None:
        return bool(getattr(parent, "isasync", True))
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_on_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine for sync code on an event loop of its own, in the calling thread.

    In the caller's thread, an interruption (Prefect's ``TerminationSignal``, ``KeyboardInterrupt``)
    reaches the loop, which then cancels the coroutine, so a sensor cancels its owned jobs as in
    async code. A sync caller inside a running loop (rare) has Prefect run it on another thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    return run_coro_as_sync(coroutine)  # type: ignore[return-value]
