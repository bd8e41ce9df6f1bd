"""Errors a prediction request can meet; each maps to an HTTP status and names the cause."""

from __future__ import annotations

from typing import Any

from knot_prefect.errors import KnotError


class ServingError(KnotError):
    """A request could not be answered; ``status_code`` and ``detail`` form the response.

    Attributes:
        status_code: The HTTP status of the answer.
        detail: Structured detail (what was wrong, for which entity, view or column).
    """

    status_code = 400

    def __init__(self, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.detail = detail or {}


class UnknownEntityError(ServingError):
    """The online store holds no feature values for an entity key."""

    status_code = 404


class AmbiguousEntityError(ServingError):
    """The source holds several rows for a key and nothing says which is the latest."""

    status_code = 409


class StaleFeaturesError(ServingError):
    """Feature values are older than the configured maximum age."""

    status_code = 409


class ContractViolationError(ServingError):
    """The features of the request break the data contract."""

    status_code = 422


class ModelNotReadyError(ServingError):
    """No model is loaded yet (the service is starting or the alias does not resolve)."""

    status_code = 503


class FeatureStoreUnavailableError(ServingError):
    """The online store could not be read."""

    status_code = 503
