"""Accept a ``FeastFeatureStore`` block, its document name, or an open ``feast.FeatureStore``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from feast import FeatureStore

    from knot_prefect.blocks.feast_store import FeastFeatureStore

StoreLike = Union["FeastFeatureStore", "FeatureStore", str]


def resolve_store(store: StoreLike) -> tuple[FeatureStore, FeastFeatureStore | None]:
    """Open the store behind ``store``.

    Args:
        store: A ``FeastFeatureStore`` block, the name of a saved one, or a
            ``feast.FeatureStore``.

    Returns:
        The ``feast.FeatureStore`` and the block (``None`` for a bare store).

    Raises:
        BlockNotFoundError: For a name no saved ``FeastFeatureStore`` has; the message
            lists the saved ones.
    """
    from knot_prefect.blocks.feast_store import FeastFeatureStore

    if isinstance(store, str):
        from knot_prefect.blocks.resolve import resolve_block

        store = resolve_block(store, FeastFeatureStore)
    if isinstance(store, FeastFeatureStore):
        return store.get_store(), store
    from feast import FeatureStore

    if isinstance(store, FeatureStore):
        return store, None
    raise TypeError(
        f"Expected a FeastFeatureStore block, its document name or a feast.FeatureStore, "
        f"got {type(store).__name__}."
    )
