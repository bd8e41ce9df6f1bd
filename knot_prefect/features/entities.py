"""Check and prepare entity frames for point-in-time retrieval."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from knot_prefect.features.errors import EntityFrameError

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_TIMESTAMP_COLUMN = "event_timestamp"
ROW_ID = "knot_entity_row_"


def prepare_entity_frame(
    frame: pd.DataFrame, timestamp_column: str, join_keys: Sequence[str]
) -> pd.DataFrame:
    """Check an entity frame's columns and make its timestamps timezone-aware (UTC).

    Args:
        frame: One row per entity and point in time.
        timestamp_column: The column holding each row's point in time.
        join_keys: The join keys of the views being read.

    Returns:
        The frame (a copy only when the timestamp column had to be converted).

    Raises:
        EntityFrameError: Naming the missing timestamp or join-key columns and the
            columns the frame has.

    Examples:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"customer_id": [1], "event_timestamp": ["2024-01-01"]})
        >>> prepare_entity_frame(frame, "event_timestamp", ["customer_id"]).dtypes.iloc[1]
        datetime64[ns, UTC]
    """
    import pandas as pd

    columns = list(frame.columns)
    if timestamp_column not in columns:
        raise EntityFrameError(
            f"The entity frame has no timestamp column {timestamp_column!r} (columns: "
            f"{', '.join(map(str, columns))}). Add the point in time of each row as "
            f"{timestamp_column!r}, or pass timestamp_column= naming the column that holds it."
        )
    missing = [key for key in join_keys if key not in columns]
    if missing:
        raise EntityFrameError(
            f"The entity frame lacks join key column(s) {', '.join(map(repr, missing))} "
            f"needed by the requested feature views (columns: {', '.join(map(str, columns))})."
        )
    stamps = frame[timestamp_column]
    if not isinstance(stamps.dtype, pd.DatetimeTZDtype):
        try:
            converted = pd.to_datetime(stamps, utc=True)
        except (ValueError, TypeError) as exc:
            raise EntityFrameError(
                f"The entity frame's timestamp column {timestamp_column!r} does not hold "
                f"timestamps: {exc}"
            ) from None
        frame = frame.assign(**{timestamp_column: converted})
    if frame[timestamp_column].isna().any():
        count = int(frame[timestamp_column].isna().sum())
        raise EntityFrameError(
            f"The entity frame's timestamp column {timestamp_column!r} has {count} empty "
            "value(s); every row needs a point in time."
        )
    return frame


def restore_entity_rows(entities: pd.DataFrame, result: pd.DataFrame, row_id: str) -> pd.DataFrame:
    """Put a retrieval's rows back in entity order, with every entity row present.

    Args:
        entities: The entity frame sent to Feast, with a ``row_id`` column 0..n-1.
        result: Feast's result, carrying ``row_id`` through.
        row_id: The row id column; it is dropped from the returned frame.

    Returns:
        One row per entity row, in the original order; feature columns are empty for
        entity rows the offline store left out.

    Examples:
        >>> import pandas as pd
        >>> entities = pd.DataFrame({"id": [7, 8], "row": [0, 1]})
        >>> result = pd.DataFrame({"id": [8], "row": [1], "x": [1.5]})
        >>> restore_entity_rows(entities, result, "row").to_dict("list")
        {'id': [7, 8], 'x': [nan, 1.5]}
    """
    features = [column for column in result.columns if column not in entities.columns]
    ordered = result.set_index(row_id)[features].reindex(range(len(entities)))
    restored = entities.drop(columns=[row_id]).reset_index(drop=True)
    return restored.join(ordered.reset_index(drop=True))
