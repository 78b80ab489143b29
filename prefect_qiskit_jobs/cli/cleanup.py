"""``prefect-qiskit-jobs cleanup``: delete old stored results and old IBM jobs, never a live one's.

The command form of ``clean_up_jobs`` (``prefect_qiskit_jobs/cleanup.py`` says what is spared and
why). It picks jobs as ``jobs list`` does (``--flow-run``, ``--deployment``, the same credentials
and result storage) and prints one line per job and a summary; with ``--json``, the report.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from prefect_qiskit_jobs.cli.errors import BadInputError, one_line_errors
from prefect_qiskit_jobs.cli.jobs import (
    CredentialsOption,
    DeploymentOption,
    FlowRunOption,
    JsonOption,
    default_result_storage,
    parse_run_filters,
)


def cleanup(
    older_than: Annotated[
        str, typer.Option(help="Only jobs that ended this long ago: 90s, 30m, 12h, 30d, 4w.")
    ] = "30d",
    results: Annotated[
        bool, typer.Option("--results", help="Delete their stored results from Prefect's result storage.")
    ] = False,
    ibm: Annotated[
        bool, typer.Option("--ibm", help="Delete the jobs on IBM too (DELETE /jobs/{id}; cannot be undone).")
    ] = False,
    flow_run: FlowRunOption = None,
    deployment: DeploymentOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go; delete nothing.")] = False,
    credentials: CredentialsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete stored results (--results) and IBM jobs (--ibm) of final jobs that ended long ago.

    A job that has not ended, or whose flow run is not over, is skipped. Safe to run twice or from
    two processes at once.
    """
    from prefect_qiskit_jobs.cleanup import cutoff_of, run_cleanup

    with one_line_errors():
        if not (results or ibm):
            raise BadInputError("Nothing to delete: give --results, --ibm or both")
        cutoff_of(older_than)
        flow_run_id, deployment_id = parse_run_filters(flow_run, deployment)
        storage = default_result_storage() if results else None
        report = asyncio.run(
            run_cleanup(
                older_than=older_than,
                results=results,
                ibm=ibm,
                flow_run_id=flow_run_id,
                deployment_id=deployment_id,
                dry_run=dry_run,
                credentials=credentials,
                result_storage=storage,
            )
        )
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    for line in report.lines():
        typer.echo(line)
    typer.echo(report.summary())
