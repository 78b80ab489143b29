"""IBM Cloud IAM: the API key exchanged for a bearer token, as the client's authenticator asks."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from prefect_qiskit_jobs.emulator.auth import API_KEY_GRANT, IAM_TOKEN_PATH, account_of, iam_error

from .common import EmulatorDep

IAM_PREFIX = "/iam"
router = APIRouter(prefix=IAM_PREFIX)


@router.post(IAM_TOKEN_PATH)
async def exchange_api_key(request: Request, emulator: EmulatorDep) -> JSONResponse:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    grant_type, apikey = form.get("grant_type", [""])[0], form.get("apikey", [""])[0]
    if grant_type != API_KEY_GRANT:
        return JSONResponse(iam_error(f"Unsupported grant type {grant_type!r}"), status_code=400)
    if not emulator.config.accepts(apikey):
        return JSONResponse(iam_error("Provided API key could not be found."), status_code=400)
    account = account_of(apikey)
    emulator.traffic.count_account(account, f"POST {IAM_PREFIX}{IAM_TOKEN_PATH}")
    return JSONResponse(emulator.issuer.issue(account))
