"""Field types that knot blocks and settings share, so one concept is declared once.

Each type carries its default and its form hints; the field that uses it adds the
``description`` the Prefect UI shows under it. An empty field is ``None``.

Examples:
    >>> from pydantic import BaseModel, Field
    >>> class Service(BaseModel):
    ...     tracking: BlockDocumentName = Field(description="MLflowTracking document.")
    ...     tracking_uri: CredentialFreeUri = Field(description="Tracking server URI.")
    ...     token: OptionalSecret = Field(description="Bearer token.")
    >>> service = Service(token="s3cret")
    >>> service.tracking is None, "s3cret" in repr(service)
    (True, False)
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr

from knot_prefect.urls import NO_CREDENTIALS_PATTERN

__all__ = ["BlockDocumentName", "CredentialFreeUri", "OptionalSecret", "OptionalText"]

OptionalText = Annotated[str | None, Field(default=None)]
"""Text that may stay empty: a table, a column, a query, a folder."""

BlockDocumentName = Annotated[str | None, Field(default=None)]
"""The name of another block's saved document; empty picks the documented default."""

OptionalSecret = Annotated[SecretStr | None, Field(default=None)]
"""A password or token that may stay empty: masked in the UI, in reprs and in logs."""

CredentialFreeUri = Annotated[
    str | None, Field(default=None, json_schema_extra={"pattern": NO_CREDENTIALS_PATTERN})
]
"""A URI that may stay empty and whose form refuses a password or token in it.

Its secrets belong in the block's secret fields; the block's validator names the field.
"""
