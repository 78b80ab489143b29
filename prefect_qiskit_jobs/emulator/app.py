"""The HTTP face of the emulator: the routers of ``routes`` behind the traffic middleware, and its lifespan.

Paths mirror what the unmodified client requests. The runtime API sits under a base path that
contains ``experimental`` so the client uses the URL as given instead of deriving IBM's regional
host from the instance CRN.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .auth import iam_error
from .catalog import Catalog
from .config import EmulatorConfig
from .queue import QueueModel
from .routes import CODE_INVALID_JOB, ROUTERS, ApiError, Emulator
from .routes.common import CODE_NO_ROUTE
from .routes.directory import CATALOG_PREFIX, SEARCH_PREFIX
from .routes.iam import IAM_PREFIX
from .store import JobStore
from .traffic import ADMIN_PREFIX, Traffic, TrafficMiddleware, error_body

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["CATALOG_PREFIX", "IAM_PREFIX", "SEARCH_PREFIX", "create_app"]


def create_app(config: EmulatorConfig | None = None) -> FastAPI:
    """Build the emulator's ASGI app; its queue model runs for the lifetime of the server."""
    config = config or EmulatorConfig()
    catalog = Catalog(config.backends)
    store = JobStore(config.database)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        queue = QueueModel(store, catalog, config)
        app.state.emulator = Emulator(
            config=config, catalog=catalog, store=store, queue=queue, traffic=traffic
        )
        await queue.start()
        try:
            yield
        finally:
            await queue.stop()
            store.close()

    app = FastAPI(
        title="IBM Quantum Platform emulator",
        lifespan=lifespan,
        openapi_url=f"{ADMIN_PREFIX}/openapi.json",
        docs_url=f"{ADMIN_PREFIX}/docs",
        redoc_url=None,
        # IBM answers a path it does not serve with 404, never a redirect to a neighbouring one.
        redirect_slashes=False,
    )
    traffic = Traffic(config.faults, config.fault_seed)
    app.add_middleware(TrafficMiddleware, traffic=traffic)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.message, exc.code), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(f"Invalid request: {exc.errors()}", CODE_INVALID_JOB), status_code=400)

    @app.exception_handler(HTTPException)
    async def _no_route(request: Request, exc: HTTPException) -> JSONResponse:
        """No such path (404) or method (405): IAM's error shape on its paths, the runtime API's elsewhere."""
        message = f"{request.method} {request.url.path}: {exc.detail}"
        body = (
            iam_error(message)
            if request.url.path.startswith((IAM_PREFIX, SEARCH_PREFIX))
            else error_body(message, CODE_NO_ROUTE)
        )
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    for router in ROUTERS:
        app.include_router(router)
    return app
