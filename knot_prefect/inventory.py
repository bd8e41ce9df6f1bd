"""Find the knot block documents stored in the current Prefect API."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from knot_prefect.blocks.base import KnotBlock


def knot_documents() -> list[tuple[str, str]]:
    """List ``(block type slug, document name)`` of every knot block document.

    Anonymous documents (nested blocks saved inline) are left out.
    """
    from knot_prefect.blocks.resolve import document_names
    from knot_prefect.collection import load_block_classes

    names = document_names(list(load_block_classes().values()))
    return sorted((slug, name) for slug, found in names.items() for name in found)


def load_document(reference: str) -> tuple[KnotBlock, str]:
    """Load a knot block document by ``NAME`` or ``TYPE/NAME``.

    Returns:
        The loaded block and its document name.

    Raises:
        BlockNotFoundError: When no document (or more than one) matches; the message
            lists the existing knot documents.
    """
    from knot_prefect.blocks.base import KnotBlock
    from knot_prefect.blocks.resolve import resolve_block

    block = resolve_block(reference, KnotBlock)
    return block, reference.rpartition("/")[2]
