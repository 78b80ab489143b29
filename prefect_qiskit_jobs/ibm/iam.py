"""The IAM token exchange of a gateway's clients: one token manager, whose failed exchanges are sent again.

Before each request the client's ``CloudAuth`` asks its IAM token manager for a bearer token and,
when the exchange fails for any reason (IAM's 429 too), sends the API key itself as the credential,
which IBM's runtime API refuses with 401: one refused exchange would fail the call as if the key
were wrong. So a gateway gives each client it builds this manager instead (the client's own,
configured the same way): an exchange IAM cannot answer for now (429, a 5xx, a dropped
connection, a timeout) is sent again with the package's one re-send helper, and a hung one gives
up after the gateway's read timeout, not IAM's 60 s. Only when re-sending gives up does the client
fall back; ``failure`` then says why, and the gateway reports the 401 that follows as IBM being
unavailable, not as refused credentials. Nothing here logs or raises the key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from ibm_cloud_sdk_core import ApiException, IAMTokenManager

from prefect_qiskit_jobs.errors import TRANSIENT_STATUS, IQPUnavailableError, retry_after_of
from prefect_qiskit_jobs.limits.rate import resend_refused


class TokenExchange(IAMTokenManager):  # type: ignore[misc]
    """An ``IAMTokenManager`` whose exchanges IAM cannot answer for now are sent again (bounded)."""

    def __init__(
        self,
        like: IAMTokenManager,
        *,
        timeout: tuple[float, float],
        resend_cap_seconds: float,
        scrub: Callable[[str], str],
        log: Callable[[str], None],
    ) -> None:
        super().__init__(
            like.apikey,
            url=like.url,
            disable_ssl_verification=like.disable_ssl_verification,
            proxies=like.proxies,
        )
        self.http_config = {"timeout": timeout}  # IAM's own default waits 60 s for an answer
        self._cap, self._scrub, self._log = resend_cap_seconds, scrub, log
        # Why the last exchange failed for good (None: it did not): a 401 that follows is not the key's fault.
        self.failure: IQPUnavailableError | None = None

    def request_token(self) -> dict[str, Any]:
        self.failure = None  # a key IAM refuses (400) stays refused: the 401 that follows says so
        try:
            answer: dict[str, Any] = resend_refused(
                self._exchange, self._log, self._cap, refused="the IAM token exchange (429)", idempotent=True
            )
        except IQPUnavailableError as exc:
            self.failure = exc
            raise
        return answer

    def _exchange(self) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = super().request_token()
            return answer
        except ApiException as exc:
            if exc.code not in TRANSIENT_STATUS:
                raise
            said = f"IBM Cloud IAM could not exchange the API key for a token: {exc.code} {exc.message}"
            raise IQPUnavailableError(
                self._scrub(said),
                exc.code,
                retry_after=retry_after_of(exc.http_response),
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise IQPUnavailableError(
                self._scrub(f"IBM Cloud IAM could not be reached to exchange the API key: {exc}")
            ) from None
