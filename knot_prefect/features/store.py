"""Accept a ``FeastFeatureStore`` block, its document name, or an open ``feast.FeatureStore``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    from feast import FeatureStore

    from knot_prefect.blocks.feast_store import FeastFeatureStore

StoreLike = Union["FeastFeatureStore", "FeatureStore", str]


def load_block(name: str) -> FeastFeatureStore:
    """Load a ``FeastFeatureStore`` document by name, listing the existing ones on a miss."""
    from knot_prefect.blocks.feast_store import FeastFeatureStore

    try:
        return FeastFeatureStore.load(name)  # type: ignore[return-value]
    except ValueError as exc:
        if "Unable to find" not in str(exc):
            raise
        existing = _document_names()
        listing = ", ".join(existing) if existing else "none"
        raise ConfigurationError(
            f"No FeastFeatureStore block document named {name!r} (existing: {listing}). "
            "Create it in the Prefect UI, with `knot blocks apply`, or in code with .save()."
        ) from None


def _document_names() -> list[str]:
    from prefect.client.orchestration import get_client

    from knot_prefect.blocks.feast_store import FeastFeatureStore

    try:
        with get_client(sync_client=True) as client:
            documents = client.read_block_documents_by_type(
                FeastFeatureStore.get_block_type_slug(), include_secrets=False
            )
    except Exception:  # the listing only decorates the error message
        return []
    return sorted(document.name for document in documents if document.name)


def resolve_store(store: StoreLike) -> tuple[FeatureStore, FeastFeatureStore | None]:
    """Open the store behind ``store``.

    Args:
        store: A ``FeastFeatureStore`` block, the name of a saved one, or a
            ``feast.FeatureStore``.

    Returns:
        The ``feast.FeatureStore`` and the block (``None`` for a bare store).
    """
    from knot_prefect.blocks.feast_store import FeastFeatureStore

    if isinstance(store, str):
        store = load_block(store)
    if isinstance(store, FeastFeatureStore):
        return store.get_store(), store
    from feast import FeatureStore

    if isinstance(store, FeatureStore):
        return store, None
    raise TypeError(
        f"Expected a FeastFeatureStore block, its document name or a feast.FeatureStore, "
        f"got {type(store).__name__}."
    )
