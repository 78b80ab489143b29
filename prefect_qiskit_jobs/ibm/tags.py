"""The tags every job carries, and what they are for.

IBM filters the job list by tag, so tags are how any process, long after the submitting one is
gone, finds the jobs of a flow run (the cancellation hooks and the reaper), the job a retried
task run already created (idempotent submit), and the jobs that must never be cancelled
(detached ones, meant for a later flow), the session a job was submitted in (so that the
layer cancelling a run's jobs cancels the run's sessions too), and the deployment whose run
submitted it (so that a cap on a deployment's jobs in flight counts them, see ``inflight``). A
job submitted outside any flow run carries its process's tag instead, so that the waits of that
process know the job is theirs to cancel. Once IBM has accepted a job's cancel, the layer that
sent it adds ``CANCEL_REQUESTED_TAG``: every later layer, in any process, then only confirms
that the job ends (see ``cancel.fan_out``).
"""

from __future__ import annotations

import uuid

PACKAGE_TAG = "prefect-qiskit-jobs"
FLOW_RUN_PREFIX = "prefect-flow-run:"
TASK_RUN_PREFIX = "prefect-task-run:"
SUBMIT_KEY_PREFIX = "prefect-submit:"
SESSION_PREFIX = "prefect-session:"
DEPLOYMENT_PREFIX = "prefect-deployment:"
DETACHED_TAG = "prefect-detached"
CANCEL_REQUESTED_TAG = "prefect-cancel-requested"
"""IBM accepted a cancel of this job: it is stopping, and no layer asks again."""
PROCESS_PREFIX = "prefect-qiskit-process:"
PROCESS_TAG = f"{PROCESS_PREFIX}{uuid.uuid4().hex}"
"""This process's tag: it marks the jobs the process submitted outside any flow run."""


def flow_run_tag(flow_run_id: object) -> str:
    return f"{FLOW_RUN_PREFIX}{flow_run_id}"


def task_run_tag(task_run_id: object) -> str:
    return f"{TASK_RUN_PREFIX}{task_run_id}"


def session_tag(session_id: str) -> str:
    """The tag of a job submitted inside ``ibm_session``/``ibm_batch``: how layers find the session."""
    return f"{SESSION_PREFIX}{session_id}"


def deployment_tag(deployment_id: object) -> str:
    return f"{DEPLOYMENT_PREFIX}{deployment_id}"


def selection_tags(flow_run_id: object | None = None, deployment_id: object | None = None) -> list[str]:
    """The tags that pick the jobs of a flow run and/or of a deployment's runs (none: every job).

    Example:
        >>> selection_tags("7f0c", None)
        ['prefect-flow-run:7f0c']
    """
    tags = []
    if flow_run_id is not None:
        tags.append(flow_run_tag(flow_run_id))
    if deployment_id is not None:
        tags.append(deployment_tag(deployment_id))
    return tags


def submit_key_tag(key: str) -> str:
    return f"{SUBMIT_KEY_PREFIX}{key}"


def job_tags(
    *,
    flow_run_id: object | None,
    task_run_id: object | None,
    submit_key: str,
    detached: bool = False,
    session_id: str | None = None,
    deployment_id: object | None = None,
    user_tags: tuple[str, ...] | list[str] = (),
) -> list[str]:
    """All tags of a new job: the package's, its run's, its key, its session's, deployment's, user's."""
    tags = [PACKAGE_TAG, submit_key_tag(submit_key)]
    if flow_run_id is not None:
        tags.append(flow_run_tag(flow_run_id))
    else:
        tags.append(PROCESS_TAG)
    if task_run_id is not None:
        tags.append(task_run_tag(task_run_id))
    if detached:
        tags.append(DETACHED_TAG)
    if session_id is not None:
        tags.append(session_tag(session_id))
    if deployment_id is not None:
        tags.append(deployment_tag(deployment_id))
    tags.extend(t for t in user_tags if t not in tags)
    return tags


def value_of(tags: tuple[str, ...] | list[str], prefix: str) -> str | None:
    """The value of the first tag with ``prefix``, e.g. the flow-run id of a job."""
    return next((t[len(prefix) :] for t in tags if t.startswith(prefix)), None)


def owned_by(tags: tuple[str, ...] | list[str], flow_run_id: object | None) -> bool:
    """Whether a job belongs to the flow run ``flow_run_id`` (None: to this process, outside any run).

    Only an owner may cancel a job it waits for: a job handed over by id from another run, a
    person, or another process, and a detached job, are never cancelled by a wait.
    """
    if DETACHED_TAG in tags:
        return False
    if flow_run_id is None:
        return PROCESS_TAG in tags
    return value_of(tags, FLOW_RUN_PREFIX) == str(flow_run_id)
