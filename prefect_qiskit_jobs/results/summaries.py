"""What a finished job's result looks like in the UI: a counts table or expectation values."""

from __future__ import annotations

import logging
from typing import Any

from prefect_qiskit_jobs.models import JobRef, job_id_of
from prefect_qiskit_jobs.wait.display import artifact_key

logger = logging.getLogger(__name__)

TOP_OUTCOMES = 8
MAX_ESTIMATOR_ROWS = 64


def counts_markdown(job_id: str, result: Any) -> str:
    """A histogram of each pub's most frequent outcomes, per classical register."""
    lines = [f"### Sampler result of job `{job_id}`", ""]
    for index, pub in enumerate(result):
        for register, bits in pub.data.items():
            counts = bits.get_counts()
            shots = sum(counts.values()) or 1
            top = sorted(counts.items(), key=lambda kv: -kv[1])[:TOP_OUTCOMES]
            lines += [
                f"**Pub {index}, register `{register}`** ({shots} shots, {len(counts)} distinct outcomes)",
                "",
                "| outcome | count | share | |",
                "|---|---:|---:|---|",
            ]
            for outcome, count in top:
                bar = "█" * max(1, round(30 * count / shots))
                lines.append(f"| `{outcome}` | {count} | {count / shots:.1%} | {bar} |")
            lines.append("")
    return "\n".join(lines)


def expectation_rows(result: Any) -> list[dict[str, Any]]:
    """One row per expectation value: pub, index in the pub's shape, value and standard error."""
    import numpy as np

    rows: list[dict[str, Any]] = []
    for index, pub in enumerate(result):
        values = np.atleast_1d(np.asarray(pub.data.evs, dtype=float))
        errors = np.atleast_1d(np.asarray(pub.data.stds, dtype=float)) if "stds" in pub.data else None
        for position, value in np.ndenumerate(values):
            std = float(errors[position]) if errors is not None and errors.shape == values.shape else None
            rows.append(
                {
                    "pub": index,
                    "index": ",".join(map(str, position)),
                    "expectation value": round(float(value), 6),
                    "± standard error": round(std, 6) if std is not None else "",
                }
            )
            if len(rows) >= MAX_ESTIMATOR_ROWS:
                return rows
    return rows


def _summary(job: JobRef | str, result: Any) -> tuple[str, str, Any, str]:
    """(its artifact key, ``table`` or ``markdown``, what to show, its description) for a job's result.

    A ``JobRef`` says its primitive; for a bare id the result's data does.
    """
    job_id = job_id_of(job)
    key = artifact_key("qiskit-result", job_id)
    primitive = job.primitive.value if isinstance(job, JobRef) else None
    if primitive == "estimator" or (result and "evs" in result[0].data):
        return key, "table", expectation_rows(result), f"Expectation values of job {job_id}"
    return key, "markdown", counts_markdown(job_id, result), f"Counts of job {job_id}"


def summarize_result(job: JobRef | str, result: Any) -> None:
    """Leave a result summary people would rather look at than read, as an artifact of the task run.

    For sync code: Prefect's client of the run's context (a sync task run's) carries it.
    """
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    # _sync: this may run on a worker thread of a sync batch, where Prefect's dispatch must not
    # hand back a coroutine that nobody awaits (and no artifact).
    try:
        key, kind, shown, description = _summary(job, result)
        if kind == "table":
            create_table_artifact(shown, key=key, description=description, _sync=True)  # type: ignore[call-arg]
        else:
            create_markdown_artifact(shown, key=key, description=description, _sync=True)  # type: ignore[call-arg]
    except Exception as exc:  # a summary is a view: never fail the fetch over it
        logger.warning("could not summarise the result of job %s: %s", job_id_of(job), exc)


async def asummarize_result(job: JobRef | str, result: Any) -> None:
    """The awaitable twin of ``summarize_result``, on the event loop with the async task run's client.

    A sync artifact call from async code builds a Prefect client of its own, and an SSL context
    with it: that was most of the CPU of fetching a batch of results.
    """
    from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

    try:
        key, kind, shown, description = _summary(job, result)
        if kind == "table":
            await acreate_table_artifact(shown, key=key, description=description)
        else:
            await acreate_markdown_artifact(shown, key=key, description=description)
    except Exception as exc:  # a summary is a view: never fail the fetch over it
        logger.warning("could not summarise the result of job %s: %s", job_id_of(job), exc)
