"""Errors raised when a work pool cannot take a deployment."""

from __future__ import annotations

from knot_prefect.errors import ConfigurationError


class WorkPoolTemplateError(ConfigurationError):
    """A work pool's base job template lacks the job variables a profile fills in."""
