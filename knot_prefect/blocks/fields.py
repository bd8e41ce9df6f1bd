"""Field types that knot blocks share, so one concept is declared once.

Each type carries its form hints; the field that uses it gives its default and the
``description`` the Prefect UI shows under it.

Examples:
    >>> from pydantic import BaseModel, Field
    >>> class Service(BaseModel):
    ...     tracking: BlockDocumentName = Field(default=None, description="MLflowTracking.")
    ...     tracking_uri: CredentialFreeUri = Field(default=None, description="Server URI.")
    >>> Service.model_json_schema()["properties"]["tracking_uri"]["pattern"].startswith("^")
    True
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from knot_prefect.urls import NO_CREDENTIALS_PATTERN

__all__ = ["BlockDocumentName", "CredentialFreeUri"]

BlockDocumentName = str | None
"""The name of another block's saved document; empty picks the documented default."""

CredentialFreeUri = Annotated[
    str | None, Field(json_schema_extra={"pattern": NO_CREDENTIALS_PATTERN})
]
"""A URI whose form refuses a password or token in it (those go in secret fields).

The block's validator refuses it too, naming the field, for values set outside the UI.
"""
