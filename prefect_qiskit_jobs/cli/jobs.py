"""``prefect-qiskit-jobs jobs``: look at and cancel IBM jobs, and print their results.

For people and scripts: it lists, shows, cancels and prints the results of IBM Quantum jobs
through the same gateway, cancel fan-out and result storage the flows use, with a saved credentials
block (``--credentials NAME``) or the ``QISKIT_IBM_*`` settings. Bad input (a malformed id, an
unknown job, missing credentials) is one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Any, cast
from uuid import UUID

import typer

from prefect_qiskit_jobs.cli.errors import FAILED_EXIT, BadInputError, one_line, one_line_errors

if TYPE_CHECKING:
    from prefect.filesystems import WritableFileSystem
    from qiskit.primitives import PrimitiveResult

    from prefect_qiskit_jobs.cancel.fan_out import CancelReport
    from prefect_qiskit_jobs.ibm.gateway import IQPGateway
    from prefect_qiskit_jobs.models import JobSnapshot, JobStatus

jobs_app = typer.Typer(help="IBM Quantum jobs: list, show, cancel, print results.", no_args_is_help=True)


CredentialsOption = Annotated[
    str | None,
    typer.Option(help="Saved IBMQuantumCredentials block; default: QISKIT_IBM_* variables."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")]
FlowRunOption = Annotated[
    str | None, typer.Option(help="Only jobs submitted by this Prefect flow run (its id).")
]
DeploymentOption = Annotated[
    str | None, typer.Option(help="Only jobs submitted by runs of this deployment (its id).")
]


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """The moment ``--since`` names: a span back from now (``90s``, ``30m``, ``2h``, ``1d``, ``1w``)
    or a date or time in ISO 8601 (local time unless it names its zone).

    Example:
        >>> now = datetime(2026, 12, 5, 12, tzinfo=timezone.utc)
        >>> parse_since("2h", now).isoformat()
        '2026-12-05T10:00:00+00:00'
        >>> parse_since("2026-12-01T08:00:00+00:00").isoformat()
        '2026-12-01T08:00:00+00:00'
    """
    from prefect_qiskit_jobs.models import span_of

    text = value.strip()
    if (span := span_of(text)) is not None:
        return (now or datetime.now(timezone.utc)) - span
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInputError(
            f"--since {value!r} is neither a span (30m, 2h, 1d, 1w) nor an ISO 8601 date or time"
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


def parse_states(values: Sequence[str]) -> frozenset[JobStatus]:
    """The statuses ``--state`` names, in any case.

    Example:
        >>> sorted(state.value for state in parse_states(["queued", "RUNNING"]))
        ['QUEUED', 'RUNNING']
    """
    from prefect_qiskit_jobs.models import JobStatus

    known = {status.value: status for status in JobStatus}
    states = set()
    for value in values:
        status = known.get(value.strip().upper())
        if status is None:
            raise BadInputError(f"--state {value!r} is not a job status: one of {', '.join(known)}")
        states.add(status)
    return frozenset(states)


def pending_filter(states: frozenset[JobStatus]) -> bool | None:
    """What to ask IBM for (``pending``) so that it sends no job the states leave out, when it can.

    Example:
        >>> from prefect_qiskit_jobs.models import JobStatus
        >>> pending_filter(frozenset({JobStatus.QUEUED})), pending_filter(frozenset({JobStatus.DONE}))
        (True, False)
    """
    if not states or any(status.value == "UNKNOWN" for status in states):
        return None
    if all(status.is_final for status in states):
        return False
    if not any(status.is_final for status in states):
        return True
    return None


def parse_run_id(value: str, flag: str) -> UUID:
    """A flow-run or deployment id, checked before anything is sent."""
    try:
        return UUID(value.strip())
    except ValueError:
        raise BadInputError(f"{flag} {value!r} is not a Prefect id (a UUID)") from None


def parse_run_filters(flow_run: str | None, deployment: str | None) -> tuple[UUID | None, UUID | None]:
    """``--flow-run`` and ``--deployment`` as ids, checked before anything is sent (None: not given)."""
    return (
        parse_run_id(flow_run, "--flow-run") if flow_run is not None else None,
        parse_run_id(deployment, "--deployment") if deployment is not None else None,
    )


def job_row(job: JobSnapshot) -> dict[str, object]:
    """A job as plain JSON: what ``jobs list --json`` prints for each job, and ``jobs show --json``."""
    from prefect_qiskit_jobs.ibm.tags import DEPLOYMENT_PREFIX, FLOW_RUN_PREFIX, value_of

    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "job_id": job.job_id,
        "status": job.status.value,
        "backend": job.backend,
        "program": job.primitive,
        "created": when(job.created),
        "running": when(job.running),
        "finished": when(job.finished),
        "position_in_queue": job.position_in_queue,
        "estimated_start": when(job.estimated_start),
        "quantum_seconds": job.quantum_seconds,
        "reason": job.reason,
        "reason_code": job.reason_code,
        "flow_run_id": value_of(job.tags, FLOW_RUN_PREFIX),
        "deployment_id": value_of(job.tags, DEPLOYMENT_PREFIX),
        "session_id": job.session_id,
        "tags": list(job.tags),
    }


def show_time(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def show_seconds(seconds: float | None) -> str:
    return f"{seconds:g}" if seconds is not None else "-"


def jobs_table(jobs: Sequence[JobSnapshot]) -> Any:
    """The ``jobs list`` table, as Prefect's ``flow-run ls`` draws its runs."""
    from rich.table import Table

    from prefect_qiskit_jobs.ibm.tags import FLOW_RUN_PREFIX, value_of

    table = Table(title="IBM Quantum Jobs")
    table.add_column("Job ID", style="blue", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Backend", style="cyan", no_wrap=True)
    table.add_column("Program", no_wrap=True)
    table.add_column("Created (UTC)", no_wrap=True)
    table.add_column("QPU s", justify="right", no_wrap=True)
    table.add_column("Flow run", no_wrap=True)
    for job in jobs:
        table.add_row(
            job.job_id,
            job.status.value,
            job.backend or "-",
            job.primitive or "-",
            show_time(job.created),
            show_seconds(job.quantum_seconds),
            value_of(job.tags, FLOW_RUN_PREFIX) or "-",
        )
    return table


def print_rich(renderable: Any) -> None:
    """Print a rich table to stdout; when stdout is not a terminal, wide enough for whole ids."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(renderable)


def jobs_gateway(credentials: str | None) -> IQPGateway:
    """The gateway for ``--credentials``, or for the ``QISKIT_IBM_*`` settings when none is named."""
    from prefect_qiskit_jobs.blocks import resolve_credentials
    from prefect_qiskit_jobs.ibm.gateway import gateway_for

    return gateway_for(resolve_credentials(credentials))


def default_result_storage() -> WritableFileSystem:
    """Prefect's result storage, where ``fetch_job_result`` keeps results (sync even inside a loop)."""
    from prefect.results import get_default_result_storage

    return cast("WritableFileSystem", get_default_result_storage(_sync=True))  # type: ignore[call-arg]


def storage_place(storage: WritableFileSystem) -> str:
    """Where a result storage keeps its files, for people: its folder, else its kind."""
    basepath = getattr(storage, "basepath", None)
    return f"{type(storage).__name__} {basepath}" if basepath else type(storage).__name__


def pub_payloads(result: PrimitiveResult[Any]) -> list[dict[str, object]]:
    """Each pub's counts per classical register (a Sampler), or expectation values (an Estimator)."""
    import numpy as np

    pubs: list[dict[str, object]] = []
    for index, pub in enumerate(result):
        payload: dict[str, object] = {"pub": index}
        if "evs" in pub.data:
            payload["evs"] = np.asarray(pub.data.evs, dtype=float).tolist()
            if "stds" in pub.data:
                payload["stds"] = np.asarray(pub.data.stds, dtype=float).tolist()
        else:
            payload["counts"] = {
                register: dict(sorted(bits.get_counts().items(), key=lambda kv: (-kv[1], kv[0])))
                for register, bits in pub.data.items()
                if hasattr(bits, "get_counts")
            }
        pubs.append(payload)
    return pubs


def result_lines(pubs: list[dict[str, object]]) -> list[str]:
    """``pub_payloads`` for people: one line per outcome, most frequent first, or per value.

    Example:
        >>> for line in result_lines([{"pub": 0, "counts": {"meas": {"00": 3, "11": 1}}}]):
        ...     print(line)
        pub 0, register meas (4 shots):
          00  3
          11  1
    """
    lines: list[str] = []
    for pub in pubs:
        counts = pub.get("counts")
        if isinstance(counts, dict):
            for register, outcomes in counts.items():
                lines.append(f"pub {pub['pub']}, register {register} ({sum(outcomes.values())} shots):")
                width = max((len(str(count)) for count in outcomes.values()), default=1)
                lines += [f"  {outcome}  {count:>{width}}" for outcome, count in outcomes.items()]
        if "evs" in pub:
            stds = pub.get("stds")
            lines.append(f"pub {pub['pub']}: expectation values {pub['evs']}")
            if stds is not None:
                lines.append(f"  standard errors {stds}")
    return lines


@jobs_app.command("list")
def jobs_list(
    flow_run: FlowRunOption = None,
    deployment: DeploymentOption = None,
    state: Annotated[
        list[str] | None,
        typer.Option(help="Only jobs in this status: QUEUED, RUNNING, DONE, ERROR, CANCELLED (repeatable)."),
    ] = None,
    backend: Annotated[str | None, typer.Option(help="Only jobs on this backend.")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only jobs created since: a span back from now (30m, 2h, 1d, 1w) or an ISO date/time."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many jobs, newest first.")] = 20,
    credentials: CredentialsOption = None,
    as_json: JsonOption = False,
) -> None:
    """List IBM Quantum jobs, newest first: a table, or JSON with --json."""
    from prefect_qiskit_jobs.ibm.tags import selection_tags

    with one_line_errors():
        tags = selection_tags(*parse_run_filters(flow_run, deployment))
        states = parse_states(state or [])
        created_after = parse_since(since) if since is not None else None
        gateway = jobs_gateway(credentials)
        jobs = listed_jobs(gateway, tags, states, backend, created_after, limit)
    if as_json:
        typer.echo(json.dumps([job_row(job) for job in jobs], indent=2))
    elif jobs:
        print_rich(jobs_table(jobs))
    else:
        typer.echo("No IBM Quantum jobs match.")


LISTING_CAP = 2000


def listed_jobs(
    gateway: IQPGateway,
    tags: list[str],
    states: frozenset[JobStatus],
    backend: str | None,
    created_after: datetime | None,
    limit: int,
) -> list[JobSnapshot]:
    """The ``limit`` newest jobs that match; IBM filters all but some combinations of statuses.

    IBM filters by pending or not, so a status it cannot filter alone (DONE without ERROR, say)
    is picked here, from listings that grow fourfold until ``limit`` match, the listing ends, or
    ``LISTING_CAP`` jobs were read.
    """
    pending = pending_filter(states)
    wanted = limit
    while True:
        jobs = gateway.list_jobs(
            tags=tags or None, pending=pending, limit=wanted, backend=backend, created_after=created_after
        )
        matched = [job for job in jobs if not states or job.status in states]
        if len(matched) >= limit or len(jobs) < wanted or wanted >= LISTING_CAP:
            return matched[:limit]
        wanted = min(wanted * 4, LISTING_CAP)


@jobs_app.command("show")
def jobs_show(
    job_id: Annotated[str, typer.Argument(help="The IBM job id.")],
    credentials: CredentialsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one job: status, queue position, backend, flow run, metrics, QPU seconds, stored result."""
    from prefect.results import ResultStore

    from prefect_qiskit_jobs.models import check_job_id
    from prefect_qiskit_jobs.results.fetch import result_key

    with one_line_errors():
        check_job_id(job_id)
        job = jobs_gateway(credentials).read_in_full(job_id)
    storage = default_result_storage()
    key = result_key(job_id)
    stored = ResultStore(result_storage=storage).exists(key)
    row = {
        **job_row(job),
        "result_key": key,
        "result_stored": stored,
        "result_storage": storage_place(storage),
    }
    if as_json:
        typer.echo(json.dumps(row, indent=2))
        return
    if stored:
        where = f"stored under {key} in {storage_place(storage)}"
    else:
        where = f"not in result storage (would be {key}); `jobs result {job_id}` reads it from IBM"
    fields = [
        ("status", job.describe()),
        ("backend", job.backend or "-"),
        ("program", job.primitive or "-"),
        ("created", show_time(job.created)),
        ("running", show_time(job.running)),
        ("finished", show_time(job.finished)),
        ("queue position", str(job.position_in_queue) if job.position_in_queue else "-"),
        ("estimated start", show_time(job.estimated_start)),
        ("QPU seconds", show_seconds(job.quantum_seconds)),
        ("session", job.session_id or "-"),
        ("flow run", str(row["flow_run_id"] or "-")),
        ("deployment", str(row["deployment_id"] or "-")),
        ("tags", ", ".join(job.tags) or "-"),
        ("result", where),
    ]
    typer.echo(f"Job {job.job_id}")
    for name, value in fields:
        typer.echo(f"  {name:<16}{value}")


@jobs_app.command("cancel")
def jobs_cancel(
    job_ids: Annotated[list[str] | None, typer.Argument(help="IBM job ids.", show_default=False)] = None,
    flow_run: Annotated[
        str | None, typer.Option(help="Cancel every pending job of this Prefect flow run (its id).")
    ] = None,
    credentials: CredentialsOption = None,
) -> None:
    """Cancel jobs, exactly once each; report the ones that had already ended."""
    from prefect_qiskit_jobs.cancel.fan_out import Layer, cancel_jobs
    from prefect_qiskit_jobs.ibm.tags import flow_run_tag
    from prefect_qiskit_jobs.models import check_job_id

    with one_line_errors():
        if bool(job_ids) == (flow_run is not None):
            raise BadInputError("give job ids or --flow-run ID, not both and not neither")
        ids = [check_job_id(job_id) for job_id in dict.fromkeys(job_ids or [])]
        run_id = parse_run_id(flow_run, "--flow-run") if flow_run is not None else None
        gateway = jobs_gateway(credentials)
        # Every job is read before anything is cancelled: an unknown id cancels nothing.
        if run_id is not None:
            jobs = gateway.list_jobs(tags=[flow_run_tag(run_id)])
            if not jobs:
                typer.echo(f"No IBM jobs of flow run {run_id}.")
                return
        else:
            jobs = [gateway.read(job_id) for job_id in ids]
    said: list[str] = []
    # The cancels go through the fan-out every layer uses, so this process never sends a job's
    # cancel twice; its own per-job lines are replaced by the ones below.
    reports = cancel_jobs(gateway, jobs, Layer.COMMAND, said.append)
    by_id = {report.job_id: report for report in reports}
    counts = {"cancelled": 0, "already": 0, "earlier": 0, "unanswered": 0}
    for job in jobs:
        kind, line = _cancel_line(job, by_id.get(job.job_id))
        counts[kind] += 1
        typer.echo(f"{job.job_id}  {line}")
    described = {report.describe(Layer.COMMAND) for report in reports}
    for line in said:
        if line not in described:
            typer.echo(one_line(line), err=True)
    typer.echo(
        f"Cancelled {counts['cancelled']} job(s); {counts['already']} already final"
        + (f"; {counts['earlier']} already being cancelled" if counts["earlier"] else "")
        + (f"; {counts['unanswered']} not cancelled" if counts["unanswered"] else "")
    )
    if counts["unanswered"]:
        raise typer.Exit(FAILED_EXIT)


def _cancel_line(job: JobSnapshot, report: CancelReport | None) -> tuple[str, str]:
    """What the cancel command says of one job, and under which count it goes."""
    now = report.final_status.value if report and report.final_status else "not yet confirmed"
    if job.status.is_final:
        return "already", f"already final ({job.status.value}): nothing sent"
    if report is None:
        return "unanswered", f"not cancelled ({job.status.value})"
    if report.requested_earlier:
        return "earlier", f"cancel accepted earlier: nothing sent (now {now})"
    if not report.sent:
        return "already", "already final: IBM answered that it had ended"
    return "cancelled", f"cancel sent (now {now})"


@jobs_app.command("result")
def jobs_result(
    job_id: Annotated[str, typer.Argument(help="The IBM job id.")],
    credentials: CredentialsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a job's counts or expectation values: from Prefect result storage, else from IBM."""
    from prefect_qiskit_jobs.errors import IQPError, ResultNotStoredError
    from prefect_qiskit_jobs.models import JobStatus, check_job_id
    from prefect_qiskit_jobs.results.fetch import read_job_result, result_key

    with one_line_errors():
        check_job_id(job_id)
        storage = default_result_storage()
        try:
            result = read_job_result(job_id, storage)
            source = f"result storage: {result_key(job_id)} in {storage_place(storage)}"
            origin = "storage"
        except ResultNotStoredError:
            gateway = jobs_gateway(credentials)
            job = gateway.read(job_id)
            job.raise_for_outcome()
            if job.status is not JobStatus.DONE:
                raise IQPError(
                    f"Job {job_id} has no result yet: it is {job.describe()}; wait for it first"
                ) from None
            result = gateway.result(job_id, job.primitive)
            source = "IBM Quantum Platform (not in result storage)"
            origin = "ibm"
    pubs = pub_payloads(result)
    if as_json:
        typer.echo(
            json.dumps(
                {"job_id": job_id, "source": origin, "key": result_key(job_id), "pubs": pubs}, indent=2
            )
        )
        return
    typer.echo(f"Result of job {job_id} (from {source})")
    for line in result_lines(pubs):
        typer.echo(line)
