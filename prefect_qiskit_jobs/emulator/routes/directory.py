"""IBM Cloud's Global Search and Global Catalog: where the client finds the instance and its plan."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from prefect_qiskit_jobs.emulator.auth import iam_error

from .common import EmulatorDep

SEARCH_PREFIX = "/global-search"
CATALOG_PREFIX = "/global-catalog"
PLAN_ID = "emulator-plan"
router = APIRouter()


@router.post(f"{SEARCH_PREFIX}/v3/resources/search")
async def search_instances(request: Request, emulator: EmulatorDep) -> JSONResponse:
    if not emulator.issuer.verify(request.headers.get("authorization")):
        return JSONResponse(iam_error("Unauthorized"), status_code=401)
    item = {
        "crn": emulator.config.instance_crn,
        "name": "emulator-instance",
        "service_plan_unique_id": PLAN_ID,
        "doc": {"extensions": {"backends": [d.name for d in emulator.catalog.listed(False)]}},
        "tags": [],
    }
    return JSONResponse({"items": [item], "search_cursor": None, "limit": 100})


@router.get(CATALOG_PREFIX + "/{plan_id}")
async def catalog_entry(plan_id: str) -> JSONResponse:
    if plan_id != PLAN_ID:
        return JSONResponse({"message": "not found"}, status_code=404)
    return JSONResponse(
        {
            "id": PLAN_ID,
            "overview_ui": {"en": {"display_name": "Open"}},
            "metadata": {"pricing": {"type": "free"}},
        }
    )
