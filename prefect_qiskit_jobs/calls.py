"""How the package's tasks are called: keys stamped at call time, and mapping over what varies.

``QiskitTask`` is a Prefect ``Task`` with two habits:

- a submit task gets its idempotency key when the flow *calls* it (directly, ``.submit()`` or
  ``.map()``), passed as its ``idempotency_key`` parameter, so it shows in the UI and survives
  retries (see ``idempotency``); outside any run the key is a fresh one;
- a submit started with ``.submit()`` or ``.map()`` inside an ``ibm_batch``/``ibm_session`` block
  is waited for before the block closes the session (see ``sessions``);
- ``.map()`` maps only over the arguments that vary between jobs. Options, credentials, tags and
  poll policies are dicts, blocks, lists and pydantic models, all iterable, which Prefect would
  otherwise map over; they are passed whole to every mapped call, as if wrapped in ``unmapped``;
- a submit started with ``.submit()`` or ``.map()`` runs on the flow run's **submit threads**, a
  small thread pool of the package's (``PREFECT_QISKIT_JOBS_SUBMIT_THREADS``, 16), not on the
  flow's own task runner.

Why the submit threads: Prefect's ``ThreadPoolTaskRunner`` runs each task it is given on a thread
of its own for the task's whole run, and by default has no bound on its threads. A submit held back
by an in-flight cap or the creation rate (``limits``) waits in its task run, so 1,000 mapped
submits under a cap of 10 held 1,000 threads; under a bounded runner (``max_workers=8``) the
waiting submits took every worker, and the flow's other tasks never started. On the submit
threads, at most 16 submits run at a time; the others wait in the pool's queue without a thread
(as under a bounded Prefect runner, their task runs appear once they start), and the flow's
runner stays free for its other tasks.

The pool is Prefect's own ``ThreadPoolTaskRunner``: Prefect's ``.submit()``/``.map()`` run
unchanged, in a copy of the flow run context whose ``task_runner`` is the pool. So futures,
``wait_for``, the dependencies drawn in the UI, ``return_state`` and the sessions' tracking work as
for any task. One pool per flow run (per task runner of a flow run), made at its first submit. It
ends with the flow's runner: Prefect offers no hook at a flow run's end, and its runner's
``__exit__`` calls its public ``cancel_all``, which the pool wraps on that one runner instance.
There it waits for every submit, queued or running, as Prefect's unbounded runner waits for the
tasks it runs; if the flow run is being interrupted (cancelled, killed), the submits not yet
started are dropped and only the running ones are waited for, as Prefect's own runner does. A flow
whose runner is not a ``ThreadPoolTaskRunner`` (Dask, Ray, processes) keeps its runner.

Example:
    >>> from prefect_qiskit_jobs import submit_sampler_job
    >>> sorted(submit_sampler_job.static_parameters)
    ['credentials', 'options', 'poll', 'tags']
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from prefect import State, Task, unmapped
from prefect.client.schemas.objects import RunInput
from prefect.context import FlowRunContext
from prefect.futures import PrefectConcurrentFuture, PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import allow_failure, opaque, quote
from prefect.utilities.asyncutils import run_coro_as_sync
from prefect.utilities.callables import get_call_parameters
from prefect.utilities.collections import isiterable
from typing_extensions import ParamSpec

from prefect_qiskit_jobs.settings import Settings
from prefect_qiskit_jobs.submit import sessions
from prefect_qiskit_jobs.submit.idempotency import stamp_key

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
            with on_submit_threads(self.stamps_keys):
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
                    stamp_key(self.name, fresh=bool(fresh)) for _ in range(_map_length(parameters))
                ]
            with on_submit_threads(self.stamps_keys and not options.get("deferred")):
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
            kwargs[KEY_PARAMETER] = stamp_key(self.name, fresh=bool(kwargs.get("fresh")))
        return kwargs


class SubmitThreads(ThreadPoolTaskRunner[Any]):
    """The thread pool a flow run's submit tasks run on when started with ``.submit()``/``.map()``.

    Prefect's runner, bounded; it keeps the futures it made so that ``finish`` can wait for them.
    """

    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers=max_workers)
        self._submitted: list[PrefectFuture[Any]] = []
        self._submitted_lock = threading.Lock()

    def submit(
        self,
        task: Task[Any, Any],
        parameters: dict[str, Any],
        wait_for: Iterable[PrefectFuture[Any]] | None = None,
        dependencies: dict[str, set[RunInput]] | None = None,
    ) -> PrefectConcurrentFuture[Any]:
        """Prefect's ``submit`` (``map`` calls it once per item), keeping the future for ``finish``."""
        future: PrefectConcurrentFuture[Any] = super().submit(task, parameters, wait_for, dependencies)
        with self._submitted_lock:
            self._submitted.append(future)
        return future

    def finish(self, interrupted: bool) -> None:
        """Wait for every submit, or, when the flow run is being interrupted, for the running ones only."""
        if not interrupted:
            while True:  # a task still running on the flow's runner may start more meanwhile
                with self._submitted_lock:
                    futures, self._submitted = self._submitted, []
                if not futures:
                    break
                for future in futures:
                    future.wait()
        self.__exit__(None, None, None)  # drops what never started, waits for what runs


_pools: dict[int, SubmitThreads] = {}  # by id() of the flow run's task runner, until it ends
_pools_lock = threading.Lock()


def submit_threads(runner: ThreadPoolTaskRunner[Any]) -> SubmitThreads:
    """The submit threads of the flow run whose task runner is ``runner``; made at first use."""
    with _pools_lock:
        pool = _pools.get(id(runner))
        if pool is None:
            pool = _pools[id(runner)] = SubmitThreads(Settings.read().submit_threads)
            pool.__enter__()
            _finish_with(runner, pool)
        return pool


def _finish_with(runner: ThreadPoolTaskRunner[Any], pool: SubmitThreads) -> None:
    """Make the end of ``runner`` (its ``__exit__`` calls ``cancel_all``) finish ``pool`` first."""
    cancel_runner = runner.cancel_all

    def cancel_all() -> None:
        with _pools_lock:
            ending = _pools.get(id(runner))
        if ending is not None:
            # Still registered while it finishes: a submit started meanwhile joins it and is waited for.
            ending.finish(interrupted=_interrupted())
            with _pools_lock:
                del _pools[id(runner)]
        cancel_runner()

    runner.cancel_all = cancel_all  # type: ignore[method-assign]


def _interrupted() -> bool:
    """Whether the runner ends under an interruption (Prefect's ``TerminationSignal``, Ctrl-C), not
    an ``Exception``: a flow that failed has handled its exception, and its submits run on."""
    exc = sys.exc_info()[1]
    return exc is not None and not isinstance(exc, Exception)


@contextlib.contextmanager
def on_submit_threads(wanted: bool) -> Iterator[None]:
    """Inside: Prefect's ``.submit()``/``.map()`` hand task runs to the flow run's submit threads.

    Nothing changes when not ``wanted``, outside a flow run, on a task runner other than Prefect's
    thread pool, or on the submit threads themselves.
    """
    context = FlowRunContext.get()
    runner = getattr(context, "task_runner", None)
    if (
        not wanted
        or context is None
        or not isinstance(runner, ThreadPoolTaskRunner)
        or isinstance(runner, SubmitThreads)
    ):
        yield
        return
    pool = submit_threads(runner)
    with context.model_copy(update={"task_runner": pool}):
        yield


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
