"""Accept a block instance or the name of its block document."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from knot_prefect.blocks.warehouses.base import Warehouse


def resolve_warehouse(warehouse: Warehouse | str) -> Warehouse:
    """A warehouse block, loading it when given its document name (or ``slug/name``).

    Raises:
        BlockNotFoundError: When no warehouse document has that name, listing those
            that exist.
    """
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse

    return resolve_block(warehouse, Warehouse)
