"""Fuzz the OpenAPI document of a running service: no input gives a server error."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.serving.world import MODEL, ServerThread, World


def test_api_answers_every_input_without_server_error(world: World) -> None:
    """Every operation of the document, with generated valid and invalid bodies.

    Each answer is checked by schemathesis: no 5xx, a documented status code and
    content type, and a body that matches the documented schema.
    """
    from knot_prefect.serving import ServeSettings, build_app

    app = build_app(ServeSettings(model=f"{MODEL}@champion", features=str(world.repo),
                                  tracking=world.tracking_uri, max_batch=20))
    with ServerThread(app) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        assert {operation.path for operation in operations} >= {"/predict", "/readyz"}
        for operation in operations:
            examples = 60 if operation.path == "/predict" else 5

            @given(case=operation.as_strategy())
            @settings(max_examples=examples, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def fuzz(case: Any) -> None:
                case.call_and_validate()

            fuzz()
