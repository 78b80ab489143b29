"""A submit lists its key after the POST only when the POST may have made more than one job."""

from __future__ import annotations

import requests
from urllib3.util.retry import Retry

from prefect_qiskit_jobs.ibm import attempts


def _answer(method: str, history: tuple[object, ...] | None) -> requests.Response:
    response = requests.Response()
    response.request = requests.Request(method, "http://127.0.0.1/jobs").prepare()

    class Raw:
        retries = Retry(history=history) if history is not None else None

    response.raw = Raw()
    return response


def _sent(*answers: requests.Response) -> attempts.Sends:
    session = requests.Session()
    attempts.hook(session)
    attempts.hook(session)  # twice is once
    assert len(session.hooks["response"]) == 1
    with attempts.counting("POST") as sends:
        for answer in answers:
            for hook in session.hooks["response"]:
                hook(answer)
    return sends


def test_a_post_sent_once_and_answered_is_once() -> None:
    assert _sent(_answer("POST", ()), _answer("GET", ())).once


def test_a_re_sent_post_two_posts_or_no_retry_record_are_not_once() -> None:
    resent = Retry().new(history=(object(),))
    assert not _sent(_answer("POST", tuple(resent.history))).once
    assert not _sent(_answer("POST", ()), _answer("POST", ())).once
    assert not _sent(_answer("POST", None)).once  # no record: look, to be safe
    assert not _sent().once  # no answer (the hook never ran): look
