"""IBM Cloud IAM as the client meets it: API keys exchanged for short-lived JWT bearer tokens.

The client decodes the access token without checking its signature and refreshes it at 80% of
its lifetime, so tokens must be JWTs carrying ``exp`` and ``iat``. The emulator signs them with a
secret kept in its database (so tokens outlive a restart, as IBM's outlive a service restart) and
accepts on runtime routes only tokens it signed that have not expired.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

import jwt

IAM_TOKEN_PATH = "/identity/token"
API_KEY_GRANT = "urn:ibm:params:oauth:grant-type:apikey"


class TokenIssuer:
    """Issues and checks access tokens for one emulator instance."""

    def __init__(self, lifetime: int, secret: str | None = None) -> None:
        self.lifetime = lifetime
        self._secret = secret or secrets.token_hex(32)

    def issue(self, account: str) -> dict[str, Any]:
        """The body IAM answers to a successful API key exchange."""
        now = int(time.time())
        claims = {
            "iat": now,
            "exp": now + self.lifetime,
            "sub": account,
            "iss": "prefect-qiskit-jobs-emulator",
        }
        token = jwt.encode(claims, self._secret, algorithm="HS256")
        return {
            "access_token": token,
            "refresh_token": "not-supported",
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "expiration": now + self.lifetime,
            "scope": "ibm openid",
        }

    def verify(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries a live token of ours."""
        return self.account(authorization) is not None

    def account(self, authorization: str | None) -> str | None:
        """The account (``sub``) of a live token of ours in an ``Authorization`` header, else None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        try:
            claims = jwt.decode(authorization[len("Bearer ") :], self._secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            return None
        return str(claims.get("sub", ""))


def account_of(api_key: str) -> str:
    """The account an API key opens, as tokens name it: a digest, never the key."""
    return "emulator-user-" + hashlib.sha256(api_key.encode()).hexdigest()[:12]


def iam_error(message: str) -> dict[str, Any]:
    """IAM's own error shape (it differs from the runtime API's)."""
    return {
        "errorCode": "BXNIM0415E",
        "errorMessage": message,
        "context": {"requestId": secrets.token_hex(8), "requestType": "incoming.Identity_Token"},
    }
