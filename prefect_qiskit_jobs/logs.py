"""Where the package's log lines go: the current run's log when there is one, else the package's.

One home for the logger helpers every stage uses, so a line always lands where a person looking at
the run (or at the resumer's or reaper's own output) will find it.
"""

from __future__ import annotations

import contextlib
import logging
from uuid import UUID

from prefect import get_run_logger
from prefect.client.schemas.objects import FlowRun
from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging import get_logger
from prefect.logging.loggers import flow_run_logger

Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]


def run_logger(fallback: str) -> Logger:
    """The current task or flow run's logger, or the package logger ``fallback`` outside any run."""
    if TaskRunContext.get() is not None or FlowRunContext.get() is not None:
        return get_run_logger()  # type: ignore[return-value]
    return get_logger(fallback)


def log_to_run(run: FlowRun | str, message: str, *, also: Logger | None = None) -> None:
    """Leave a line in a flow run's own log, where whoever looks at that run will see it.

    Given the run itself (not only its id), the line carries the run's name, as the run's own
    lines do. ``also`` repeats the line, naming the run, in another log (a resumer's or reaper's
    own output), so a person reading that output knows which run and job each line is about.
    """
    if also is not None:
        also.info("Flow run %s: %s", run_label(run), message)
    with contextlib.suppress(Exception):
        if isinstance(run, FlowRun):
            flow_run_logger(flow_run=run).info(message)
        else:
            flow_run_logger(flow_run_id=UUID(run)).info(message)


def run_label(run: FlowRun | str) -> str:
    """A flow run as a log line names it: ``'brave-fox' (id)``, or the id alone."""
    return f"{run.name!r} ({run.id})" if isinstance(run, FlowRun) else run


def id_list(ids: list[str], shown: int = 10) -> str:
    """Job ids as a log line reads them: the first ``shown``, then how many more."""
    more = len(ids) - shown
    return ", ".join(ids[:shown]) + (f" and {more} more" if more > 0 else "")
