"""The tags that let any process find a flow run's jobs, a retried submit's job, and detached jobs."""

from __future__ import annotations

from prefect_qiskit_jobs.ibm import tags


def test_a_job_carries_the_package_its_key_its_runs_then_the_users_tags() -> None:
    built = tags.job_tags(
        flow_run_id="f-1",
        task_run_id="t-1",
        submit_key="t-1",
        user_tags=["experiment:bell", "prefect-qiskit-jobs"],
    )

    assert built == [
        "prefect-qiskit-jobs",
        "prefect-submit:t-1",
        "prefect-flow-run:f-1",
        "prefect-task-run:t-1",
        "experiment:bell",
    ]


def test_outside_a_run_there_are_no_run_tags_and_detached_jobs_say_so() -> None:
    built = tags.job_tags(flow_run_id=None, task_run_id=None, submit_key="abc", detached=True)

    assert built == ["prefect-qiskit-jobs", "prefect-submit:abc", tags.PROCESS_TAG, "prefect-detached"]


def test_a_wait_owns_the_jobs_of_its_own_run_or_outside_runs_those_of_its_process() -> None:
    in_run = tags.job_tags(flow_run_id="f-1", task_run_id="t", submit_key="k")
    outside = tags.job_tags(flow_run_id=None, task_run_id=None, submit_key="k")
    detached = tags.job_tags(flow_run_id="f-1", task_run_id="t", submit_key="k", detached=True)
    elsewhere = ["prefect-qiskit-jobs", "prefect-qiskit-process:another-process"]

    assert tags.owned_by(in_run, "f-1")
    assert not tags.owned_by(in_run, "f-2")
    assert not tags.owned_by(in_run, None)
    assert tags.owned_by(outside, None)
    assert not tags.owned_by(outside, "f-1")
    assert not tags.owned_by(detached, "f-1")
    assert not tags.owned_by(elsewhere, None)
    assert not tags.owned_by([], None)


def test_value_of_reads_the_first_tag_with_a_prefix() -> None:
    found = ["prefect-qiskit-jobs", "prefect-flow-run:f-1", "prefect-flow-run:f-2", "prefect-task-run:t"]

    assert tags.value_of(found, tags.FLOW_RUN_PREFIX) == "f-1"
    assert tags.value_of(tuple(found), tags.TASK_RUN_PREFIX) == "t"
    assert tags.value_of(found, tags.SUBMIT_KEY_PREFIX) is None


def test_tag_builders_and_value_of_agree() -> None:
    assert tags.value_of([tags.flow_run_tag("x")], tags.FLOW_RUN_PREFIX) == "x"
    assert tags.value_of([tags.task_run_tag("y")], tags.TASK_RUN_PREFIX) == "y"
    assert tags.value_of([tags.submit_key_tag("z")], tags.SUBMIT_KEY_PREFIX) == "z"
