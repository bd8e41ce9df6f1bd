"""On-demand predictions: ``knot serve`` answers ``POST /predict`` for entity keys.

Entity keys in, predictions out: features come from a Feast online store or from the
latest row per key of a warehouse table (or are sent with the entity), are checked
against a data contract, and are scored by the MLflow model an alias points at; the
service follows the alias and switches models without a restart.

Examples:
    ```python
    import uvicorn
    from knot_prefect.serving import ServeSettings, build_app

    app = build_app(ServeSettings(model="churn@champion", features="local-features"))
    uvicorn.run(app, port=8000)
    ```
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from knot_prefect.serving.settings import ServeSettings, parse_model_reference

if TYPE_CHECKING:
    from fastapi import FastAPI


def build_app(settings: ServeSettings) -> FastAPI:
    """Open the store, load the model the alias points at and build the API.

    Raises:
        ConfigurationError: Naming what is wrong (block, model, alias, feature).
    """
    from knot_prefect.serving.app import create_app
    from knot_prefect.serving.service import PredictionService

    return create_app(PredictionService.from_settings(settings), max_batch=settings.max_batch)


__all__ = ["ServeSettings", "build_app", "parse_model_reference"]
