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

__all__ = ["BlockDocumentName", "CredentialFreeUri", "loaded_block_example"]

BlockDocumentName = str | None
"""The name of another block's saved document; empty picks the documented default."""

CredentialFreeUri = Annotated[
    str | None, Field(json_schema_extra={"pattern": NO_CREDENTIALS_PATTERN})
]
"""A URI whose form refuses a password or token in it (those go in secret fields).

The block's validator refuses it too, naming the field, for values set outside the UI.
"""


def loaded_block_example(block_class: str, variable: str, usage: str) -> str:
    """A block type's ``_code_example``: load the saved block, then use it.

    Args:
        block_class: The block's class, as ``knot_prefect`` exports it.
        variable: The name the example gives the loaded block.
        usage: Lines of Python that use ``variable``.

    Examples:
        >>> usage = "warehouse.read('select 1')"
        >>> print(loaded_block_example("DuckDBWarehouse", "warehouse", usage))
        ```python
        from knot_prefect import DuckDBWarehouse
        <BLANKLINE>
        warehouse = DuckDBWarehouse.load("BLOCK_NAME")
        warehouse.read('select 1')
        ```
    """
    return (
        f"```python\nfrom knot_prefect import {block_class}\n\n"
        f'{variable} = {block_class}.load("BLOCK_NAME")\n{usage.strip()}\n```'
    )
