"""The FastAPI application of ``knot serve``.

No ``from __future__ import annotations`` here: FastAPI reads the request model of
``/predict`` from the handler's annotations, and that model is built at run time from
the served entity keys.
"""

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from knot_prefect._version import __version__
from knot_prefect.serving.errors import ServingError
from knot_prefect.serving.schemas import (
    ErrorResponse,
    PredictResponse,
    input_kinds,
    request_model,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from knot_prefect.serving.service import PredictionService

logger = logging.getLogger("knot_prefect.serving")

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "An entity key has no features."},
    409: {"model": ErrorResponse,
          "description": ("Features older than the maximum age (stale=error), or several "
                          "rows for a key of a source without a timestamp column.")},
    422: {"model": ErrorResponse,
          "description": "Missing or mistyped fields, or features that break the contract."},
    503: {"model": ErrorResponse, "description": "No model loaded or the store is unreachable."},
}


def _field_errors(errors: Any) -> list[dict[str, str]]:
    fields = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        fields.append({"field": ".".join(location) or "body", "message": str(error.get("msg")),
                       "type": str(error.get("type"))})
    return fields


def create_app(service: "PredictionService", max_batch: int = 1000) -> "FastAPI":
    """Build the API around a ready :class:`PredictionService`.

    The alias follower starts with the application (uvicorn's lifespan) and stops
    with it.

    Args:
        service: The service, its first model loaded.
        max_batch: Most entities one request may ask for.

    Returns:
        The FastAPI application: ``POST /predict``, ``GET /model``, ``GET /shadow``,
        ``GET /healthz``, ``GET /readyz`` and the OpenAPI document at ``/openapi.json``
        (docs at ``/docs``).
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    from knot_prefect.serving.batching import RequestBatcher

    served = service.holder.current
    kinds = input_kinds(served.model)
    predict_request = request_model(
        served.plan.join_keys, max_batch,
        features={name: kinds.get(name, "any") for name in served.plan.view_of})
    batcher = RequestBatcher(service, max_rows=max(max_batch, 256))
    keys = ", ".join(key.name for key in served.plan.join_keys)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        logger.info("Following %s@%s every %.0fs", served.name, served.alias,
                    service.holder.refresh_seconds,
                    extra={"event": "started", "model": served.name, "alias": served.alias,
                           "version": service.holder.current.version})
        try:
            yield
        finally:
            await batcher.stop()
            service.stop()

    app = FastAPI(
        title="knot serve",
        version=__version__,
        description=(
            f"On-demand predictions of {served.name}@{served.alias} from the features of "
            f"{service.source.description}, keyed by {keys}."
        ),
        lifespan=lifespan,
    )

    @app.exception_handler(ServingError)
    async def serving_error(request: Request, exc: ServingError) -> JSONResponse:
        logger.info("Rejected %s: %s", request.url.path, exc,
                    extra={"event": "request_rejected", "status": exc.status_code,
                           "error": type(exc).__name__})
        return JSONResponse(
            {"error": type(exc).__name__, "message": str(exc), "detail": exc.detail},
            status_code=exc.status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _field_errors(exc.errors())
        message = "Invalid request: " + "; ".join(
            f"{item['field']}: {item['message']}" for item in fields
        )
        logger.info("Rejected %s: %s", request.url.path, message,
                    extra={"event": "request_rejected", "status": 422,
                           "error": "RequestValidationError"})
        return JSONResponse(
            {"error": "RequestValidationError", "message": message, "detail": fields},
            status_code=422,
        )

    async def predict(body: predict_request) -> JSONResponse:  # type: ignore[valid-type]
        started = time.perf_counter()
        entities = body.keys()  # type: ignore[attr-defined]
        answer = await batcher.predict(entities)
        logger.debug("Scored %d entities", len(entities),
                     extra={"event": "predicted", "entities": len(entities),
                            "version": answer["model"]["version"],
                            "ms": round((time.perf_counter() - started) * 1000, 3)})
        return JSONResponse(answer)

    app.post(
        "/predict",
        response_model=PredictResponse,
        responses=_ERRORS,
        summary="Score entities with their features",
        description=(
            "Send one entity (`{\"entity\": {...}}`) or a batch (`{\"entities\": [...]}`). "
            "Features are read from the feature source (or sent with an entity: all of "
            "them), checked against the contract and scored by the model the alias "
            "points at; the answer carries the model version, feature view versions and "
            "feature ages."
        ),
    )(predict)

    @app.get("/model", summary="The model serving now and the features it reads")
    def model() -> dict[str, Any]:
        current = service.holder.current
        return {
            "name": current.name, "alias": current.alias, "version": current.version,
            "uri": current.uri, "inputs": list(current.inputs),
            "features": list(current.plan.references),
            "entity_keys": [key.name for key in current.plan.join_keys],
            "feature_view_versions": current.plan.lineage,
            "loaded_at": current.loaded_at.isoformat(),
            "last_alias_check": (service.holder.last_checked.isoformat()
                                 if service.holder.last_checked else None),
            "last_error": service.holder.last_error,
        }

    @app.get("/shadow", summary="What the shadow model did since the service started",
             responses={404: {"description": "The service runs without a shadow."}})
    def shadow() -> JSONResponse:
        if service.shadow is None:
            return JSONResponse(
                {"error": "NoShadow",
                 "message": "This service scores no shadow model: start it with "
                            "`knot serve ... --shadow ALIAS` to shadow one."},
                status_code=404)
        return JSONResponse(service.shadow.report())

    @app.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="A model is loaded and the feature source answers",
             responses={503: {"description": "Not ready; the body says what is missing."}})
    def readyz() -> JSONResponse:
        state = service.readiness()
        return JSONResponse(state, status_code=200 if state["ready"] else 503)

    return app
