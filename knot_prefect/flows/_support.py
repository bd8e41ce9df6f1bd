"""Small pieces the flow templates share: fingerprints, splits, summaries."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from knot_prefect.errors import ConfigurationError

__all__ = ["frame_fingerprint", "publish_summary", "split_by_key"]

if TYPE_CHECKING:
    import pandas as pd


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """A SHA-256 of a frame's columns, dtypes and values (not of its index).

    Examples:
        >>> import pandas as pd
        >>> a = frame_fingerprint(pd.DataFrame({"x": [1, 2]}))
        >>> a == frame_fingerprint(pd.DataFrame({"x": [1, 2]}, index=[5, 6]))
        True
        >>> a == frame_fingerprint(pd.DataFrame({"x": [1, 3]}))
        False
    """
    import pandas as pd

    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def split_by_key(
    frame: pd.DataFrame, keys: Sequence[str], test_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into train and test by a hash of their keys.

    A row stays on the same side whatever else changes in the data, so a retrained
    challenger and the champion are compared on a stable evaluation set.

    Raises:
        ConfigurationError: When a key column is missing or the fraction is out of range.
    """
    import pandas as pd

    if not 0 < test_fraction < 1:
        raise ConfigurationError(f"test_fraction must be between 0 and 1, not {test_fraction}.")
    missing = [k for k in keys if k not in frame.columns]
    if missing:
        raise ConfigurationError(
            f"The training rows lack the key column(s) {missing}; their columns are "
            f"{list(frame.columns)}."
        )
    hashed = pd.util.hash_pandas_object(frame[list(keys)], index=False).to_numpy()
    is_test = (hashed % 10_000) < int(test_fraction * 10_000)
    return frame[~is_test], frame[is_test]


def markdown_table(rows: list[tuple[str, Any]]) -> str:
    """A two-column markdown table of ``(what, value)`` rows."""
    lines = ["| what | value |", "|---|---|"]
    lines += [f"| {what} | {value} |" for what, value in rows]
    return "\n".join(lines)


def publish_summary(key: str, title: str, rows: list[tuple[str, Any]], notes: str = "") -> str:
    """Create the run-summary markdown artifact every flow ends with; return its text."""
    from prefect.artifacts import create_markdown_artifact

    text = f"# {title}\n\n{markdown_table(rows)}\n"
    if notes:
        text += f"\n{notes}\n"
    create_markdown_artifact(markdown=text, key=key, description=title)
    return text
