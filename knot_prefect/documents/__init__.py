"""Block documents: YAML files of them, the ones stored in Prefect, and their checks.

- :mod:`~knot_prefect.documents.files`: validate every document of a YAML file, then
  apply them all (``knot blocks apply``), and export a stored document as YAML.
- :mod:`~knot_prefect.documents.inventory`: the knot block documents stored in the
  current Prefect API (``knot blocks ls``).
- :mod:`~knot_prefect.documents.diagnostics`: connection checks that change nothing
  they look at (``knot doctor``).
"""

from __future__ import annotations

from knot_prefect.documents.files import (
    AppliedDocument,
    BlockDocumentSpec,
    apply_file,
    export_document,
    parse_documents,
    validate_file,
)
from knot_prefect.errors import BlockDocumentError

__all__ = [
    "AppliedDocument",
    "BlockDocumentError",
    "BlockDocumentSpec",
    "apply_file",
    "export_document",
    "parse_documents",
    "validate_file",
]
