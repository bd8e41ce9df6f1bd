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
        warehouse: The block, a document name, or ``"<block-type-slug>/<name>"``.

    Returns:
        The block.

    Raises:
        BlockNotFoundError: When no warehouse document has that name, listing those
            that exist.
    """
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse

    return resolve_block(warehouse, Warehouse)  # type: ignore[type-abstract]


def _document_names(block_type_slug: str) -> list[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        documents = client.read_block_documents()
    return sorted(
        str(document.name)
        for document in documents
        if document.block_type and document.block_type.slug == block_type_slug and document.name
    )
