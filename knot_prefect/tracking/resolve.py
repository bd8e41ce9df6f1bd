"""Turn an ``MLflowTracking`` block, a block document name or nothing into a block."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking


def resolve_tracking(tracking: MLflowTracking | str | None = None) -> MLflowTracking:
    """Return the tracking block to use.

    Args:
        tracking: A block, the name of a saved ``MLflowTracking`` document, or None for
            the embedded store in the knot home folder.

    Returns:
        The block.

    Raises:
        ConfigurationError: When no document has that name; the message lists the
            existing ``MLflowTracking`` documents.

    Examples:
        >>> resolve_tracking().experiment_name
        'knot'
    """
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking

    if tracking is None:
        return MLflowTracking()
    if isinstance(tracking, MLflowTracking):
        return tracking
    if not isinstance(tracking, str):
        raise ConfigurationError(
            f"tracking must be an MLflowTracking block or a block document name, "
            f"not {type(tracking).__name__}."
        )
    try:
        block = cast("MLflowTracking", MLflowTracking.load(tracking))
    except ValueError:
        raise ConfigurationError(
            f"No MLflowTracking block document named {tracking!r}. Existing documents: "
            f"{', '.join(_document_names()) or 'none'}. Create one with "
            "`MLflowTracking(...).save(NAME)` or `knot blocks apply FILE`."
        ) from None
    return block


def _document_names() -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking

    with get_client(sync_client=True) as client:
        try:
            documents = client.read_block_documents_by_type(
                MLflowTracking.get_block_type_slug(), include_secrets=False
            )
        except ObjectNotFound:
            return []
    return sorted(d.name for d in documents if d.name and not d.is_anonymous)
