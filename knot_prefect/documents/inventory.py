"""Find the knot block documents stored in the current Prefect API."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from prefect.blocks.core import Block

    from knot_prefect.blocks.base import KnotBlock


def knot_documents() -> list[tuple[str, str]]:
    """List ``(block type slug, document name)`` of every knot block document.

    Anonymous documents (nested blocks saved inline) are left out.
    """
    from knot_prefect.blocks.registry import load_block_classes
    from knot_prefect.blocks.resolve import document_names

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


def all_documents() -> list[tuple[str, str]]:
    """List ``(block type slug, document name)`` of every named block document, any type.

    Knot's own and those of other collections (``aws-credentials``, ``s3-bucket``, ...);
    anonymous documents (nested blocks saved inline) are left out.
    """
    from prefect.client.orchestration import get_client

    documents = []
    offset = 0
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_block_documents(
                include_secrets=False, offset=offset, limit=200
            )
            documents += page
            if len(page) < 200:
                break
            offset += len(page)
    return sorted(
        (doc.block_type.slug if doc.block_type else "?", doc.name)
        for doc in documents
        if doc.name and not doc.is_anonymous
    )


def load_any_document(reference: str) -> tuple[Block, str]:
    """Load a block document of any type by ``NAME`` or ``TYPE/NAME``.

    Returns:
        The loaded block and its document name.

    Raises:
        BlockNotFoundError: When no document (or more than one) matches; the message
            lists every named document.
    """
    from prefect.blocks.core import Block

    from knot_prefect.blocks.registry import load_block_classes
    from knot_prefect.blocks.resolve import BlockNotFoundError

    load_block_classes()  # knot's block classes are known to Prefect's registry
    slug, _, name = reference.rpartition("/")
    documents = all_documents()
    matches = [(s, n) for s, n in documents if n == name and (not slug or s == slug)]
    if len(matches) == 1:
        block = Block.load(f"{matches[0][0]}/{name}", _sync=True)  # type: ignore[call-arg]
        return cast("Block", block), name
    if matches:
        raise BlockNotFoundError(
            f"Several block documents are named {name!r}: pass one of "
            f"{', '.join(f'{s}/{n}' for s, n in matches)}."
        )
    listing = ", ".join(f"{s}/{n}" for s, n in documents) or "none"
    raise BlockNotFoundError(
        f"No block document is named {reference!r}. All {len(documents)} named documents: "
        f"{listing}. (`knot blocks ls` lists knot's, `prefect block ls` every one.)"
    )
