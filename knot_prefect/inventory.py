"""Find the knot block documents stored in the current Prefect API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    from prefect.blocks.core import Block


class InventoryError(ConfigurationError):
    """A block document could not be found; the message lists the existing ones."""


def knot_documents() -> list[tuple[str, str]]:
    """List ``(block type slug, document name)`` of every knot block document.

    Anonymous documents (nested blocks saved inline) are left out.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from knot_prefect.collection import load_block_classes

    found: list[tuple[str, str]] = []
    with get_client(sync_client=True) as client:
        for cls in load_block_classes().values():
            slug = cls.get_block_type_slug()
            try:
                documents = client.read_block_documents_by_type(slug, include_secrets=False)
            except ObjectNotFound:
                continue  # The type was never registered with this API.
            found += [(slug, d.name) for d in documents if d.name and not d.is_anonymous]
    return sorted(found)


def load_document(reference: str) -> tuple[Block, str]:
    """Load a knot block document by ``NAME`` or ``TYPE/NAME``.

    Returns:
        The loaded block and its document name.

    Raises:
        InventoryError: When no document (or more than one) matches; the message lists
            the existing knot documents.
    """
    from knot_prefect.documents import block_class_for

    documents = knot_documents()
    slug, _, name = reference.rpartition("/")
    matches = [(s, n) for s, n in documents if n == name and (not slug or s == slug)]
    existing = ", ".join(f"{s}/{n}" for s, n in documents) or "none"
    if not matches:
        raise InventoryError(
            f"No knot block document named {reference!r}. Existing documents: {existing}."
        )
    if len(matches) > 1:
        choices = ", ".join(f"{s}/{n}" for s, n in matches)
        raise InventoryError(f"{reference!r} is ambiguous; use TYPE/NAME, one of: {choices}.")
    slug, name = matches[0]
    cls = block_class_for(slug, where=reference)
    block: Block = cls.load(name)  # type: ignore[assignment]
    return block, name
