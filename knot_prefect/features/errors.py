"""Errors raised around Feast repos and features; each names what was wrong."""

from __future__ import annotations

from knot_prefect.blocks.feast_config import RepoLoadError
from knot_prefect.errors import KnotError

__all__ = [
    "EntityFrameError",
    "FeatureReferenceError",
    "FeatureStoreError",
    "RepoLoadError",
    "StaleFeaturesError",
]


class FeatureStoreError(KnotError):
    """A Feast operation failed; the message names the repo, view or feature."""


class FeatureReferenceError(FeatureStoreError, ValueError):
    """A feature reference, view or feature service does not exist in the registry."""


class EntityFrameError(FeatureStoreError, ValueError):
    """An entity frame lacks the timestamp or join-key columns a retrieval needs."""


class StaleFeaturesError(FeatureStoreError):
    """One or more feature views were not materialized recently enough.

    Attributes:
        stale: View name -> age in seconds (``None`` when never materialized).
    """

    def __init__(self, message: str, stale: dict[str, float | None]) -> None:
        super().__init__(message)
        self.stale = stale
