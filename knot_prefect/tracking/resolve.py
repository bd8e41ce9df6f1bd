"""Turn an ``MLflowTracking`` block, a block document name or nothing into a block."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
        BlockNotFoundError: When no document has that name; the message lists the
            existing ``MLflowTracking`` documents.
        TypeError: When ``tracking`` is neither a block nor a name.

    Examples:
        >>> resolve_tracking().experiment_name
        'knot'
    """
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.resolve import resolve_block

    return resolve_block(tracking, MLflowTracking, default=MLflowTracking)
