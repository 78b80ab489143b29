"""How the package's tasks are called: keys stamped at call time, and mapping over what varies.

``QiskitTask`` is a Prefect ``Task`` with two habits:

- a submit task gets its idempotency key when the flow *calls* it (directly, ``.submit()`` or
  ``.map()``), passed as its ``idempotency_key`` parameter, so it shows in the UI and survives
  retries (see ``idempotency``);
- a submit started with ``.submit()`` or ``.map()`` inside an ``ibm_batch``/``ibm_session`` block
  is waited for before the block closes the session (see ``sessions``);
- ``.map()`` maps only over the arguments that vary between jobs. Options, credentials, tags and
  poll policies are dicts, blocks, lists and pydantic models, all iterable, which Prefect would
  otherwise map over; they are passed whole to every mapped call, as if wrapped in ``unmapped``.

Example:
    >>> from prefect_qiskit_jobs import submit_sampler_job
    >>> sorted(submit_sampler_job.static_parameters)
    ['credentials', 'options', 'poll', 'tags']
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from prefect import State, Task, unmapped
from prefect.utilities.annotations import allow_failure, opaque, quote
from prefect.utilities.asyncutils import run_coro_as_sync
from prefect.utilities.callables import get_call_parameters
from prefect.utilities.collections import isiterable
from typing_extensions import ParamSpec

from prefect_qiskit_jobs.submit import sessions
from prefect_qiskit_jobs.submit.idempotency import call_key, fresh_key

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

STATIC_PARAMETERS = ("credentials", "options", "poll", "tags")
KEY_PARAMETER = "idempotency_key"


def qiskit_task(**settings: Any) -> Callable[[Callable[P, R]], QiskitTask[P, R]]:
    """Make a function a ``QiskitTask`` with Prefect's task ``settings``, keeping its signature."""

    def make(fn: Callable[P, R]) -> QiskitTask[P, R]:
        return QiskitTask(fn, **settings)

    return make


class QiskitTask(Task[P, R]):
    """A Prefect task that stamps idempotency keys at call time and maps only over what varies."""

    static_parameters: tuple[str, ...] = STATIC_PARAMETERS

    def __init__(self, fn: Callable[P, R], **settings: Any) -> None:
        super().__init__(fn, **settings)
        self.stamps_keys = KEY_PARAMETER in inspect.signature(fn).parameters

    if TYPE_CHECKING:
        # One signature per way of calling: the function's own parameters give its own return
        # (a coroutine for an async task). Prefect's overloads would read a return type that a
        # type checker cannot see (qiskit ships no py.typed) as a coroutine.
        @overload  # type: ignore[override]
        def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

        @overload
        def __call__(
            self, *args: Any, return_state: Literal[True], wait_for: Any = None, **kwargs: Any
        ) -> State[Any]: ...

        @overload
        def __call__(self, *args: Any, wait_for: Any, **kwargs: Any) -> R: ...

        def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    else:

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
