"""Accept a block instance or the name of its block document."""

from __future__ import annotations

from typing import TYPE_CHECKING

from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    from knot_prefect.blocks.contract import DataContract
    from knot_prefect.blocks.warehouses.base import Warehouse


def resolve_contract(contract: DataContract | str) -> DataContract:
    """A ``DataContract`` block, loading it when given its document name.

    Args:
        contract: The block, or the name of a saved ``DataContract`` document.

    Returns:
        The block.

    Raises:
        ConfigurationError: When no such document exists, listing those that do.
    """
    from knot_prefect.blocks.contract import DataContract

    if isinstance(contract, DataContract):
        return contract
    if not isinstance(contract, str):
        raise TypeError(
            "contract must be a DataContract or a block document name, "
            f"not {type(contract).__name__}."
        )
    try:
        loaded: DataContract = DataContract.load(contract)  # type: ignore[assignment]
        return loaded
    except ValueError as exc:
        existing = _document_names("data-contract")
        raise ConfigurationError(
            f"No DataContract document named {contract!r}. Existing: "
            f"{', '.join(existing) or 'none'}; create one with `knot contract apply`."
        ) from exc


def resolve_warehouse(warehouse: Warehouse | str) -> Warehouse:
    """A warehouse block, loading it when given its document name.

    Args:
        warehouse: The block, ``"<block-type-slug>/<name>"``, or a document name
            that one warehouse document (of any type) has.

    Returns:
        The block.

    Raises:
        ConfigurationError: When no warehouse document has that name, listing those
            that exist.
    """
    from prefect.blocks.core import Block

    from knot_prefect.blocks.warehouses.base import Warehouse

    if isinstance(warehouse, Warehouse):
        return warehouse
    if not isinstance(warehouse, str):
        raise TypeError(
            f"warehouse must be a Warehouse block or a block document name, "
            f"not {type(warehouse).__name__}."
        )
    candidates = _warehouse_documents()
    if "/" in warehouse:
        matches = [slug_name for slug_name in candidates if slug_name == warehouse]
    else:
        matches = [slug_name for slug_name in candidates if slug_name.split("/", 1)[1] == warehouse]
    if len(matches) != 1:
        problem = "is ambiguous" if matches else "does not exist"
        raise ConfigurationError(
            f"Warehouse document {warehouse!r} {problem}. Existing warehouse documents: "
            f"{', '.join(sorted(candidates)) or 'none'}; name one as '<type>/<name>'."
        )
    block = Block.load(matches[0])
    if not isinstance(block, Warehouse):
        raise ConfigurationError(f"Block document {matches[0]!r} is not a knot Warehouse.")
    return block


def _warehouse_documents() -> list[str]:
    """``slug/name`` of every block document whose type can read SQL and write tables."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        documents = client.read_block_documents()
    names = []
    for document in documents:
        capabilities = set(document.block_schema.capabilities) if document.block_schema else set()
        if {"read-sql", "write-table"} <= capabilities and document.block_type and document.name:
            names.append(f"{document.block_type.slug}/{document.name}")
    return names


def _document_names(block_type_slug: str) -> list[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        documents = client.read_block_documents()
    return sorted(
        str(document.name)
        for document in documents
        if document.block_type and document.block_type.slug == block_type_slug and document.name
    )
