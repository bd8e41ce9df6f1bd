"""The base class of every knot block: shared metadata and a connection check."""

from __future__ import annotations

from typing import ClassVar

from prefect.blocks.core import Block

from knot_prefect.settings import get_settings

DOCS_BASE_URL = "https://github.com/knot-prefect/knot-prefect/blob/main/docs/blocks"


class KnotBlock(Block):
    """Base class of knot blocks.

    Subclasses set ``_block_type_name``, ``_description`` (or a docstring),
    ``_documentation_url`` and ``_code_example``, and implement
    :meth:`check_connection` so ``knot doctor`` can report on them.
    """

    _logo_url: ClassVar = get_settings().logo_url  # type: ignore[assignment]

    def check_connection(self) -> str:
        """Reach the system this block describes.

        Returns:
            A short human-readable detail on success (e.g. a server version).

        Raises:
            Exception: Whatever the underlying client raised; ``knot doctor`` reports it.
        """
        raise NotImplementedError(f"{type(self).__name__} has no connection check")
