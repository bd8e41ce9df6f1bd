"""Write a first contract from real data with Pandera's schema inference.

The result is a starting point to review: Pandera infers dtypes, nullability and
the observed value ranges of a sample, and a range seen in a sample is often
narrower than what later data will hold (``bounds=False`` leaves ranges out).

Examples:
    >>> import pandas as pd
    >>> text = infer_contract_yaml(pd.DataFrame({"a": [1, 2, 3]}), name="example")
    >>> "greater_than_or_equal_to" in text, "name: example" in text
    (True, True)
"""

from __future__ import annotations

from typing import Any

import yaml

RANGE_CHECKS = ("greater_than_or_equal_to", "less_than_or_equal_to", "in_range")


def infer_contract_yaml(
    frame: Any, name: str | None = None, bounds: bool = True, header: str | None = None
) -> str:
    """Infer a contract YAML (Pandera's format) from a frame.

    Args:
        frame: A pandas or polars DataFrame (the sample).
        name: The schema name to record (used as the contract name by default).
        bounds: Keep the inferred value ranges of numeric and time columns.
        header: A comment written at the top (without ``#``), e.g. the data's source.

    Returns:
        YAML that :class:`~knot_prefect.blocks.contract.DataContract` reads.
    """
    import pandera.pandas as pa

    if type(frame).__module__.split(".")[0] == "polars":
        frame = frame.to_pandas()
    schema = pa.infer_schema(frame)
    if not bounds:
        # Dropped before serializing: Pandera cannot write time-zone-aware bounds.
        schema = schema.update_columns({column: {"checks": []} for column in schema.columns})
    data = yaml.safe_load(schema.to_yaml() or "{}")
    # The index of a frame read from a warehouse is a row counter, not data.
    data.pop("index", None)
    if not bounds:
        for column in (data.get("columns") or {}).values():
            for check in RANGE_CHECKS:
                column.pop(check, None)
    if name:
        data["name"] = name
    text = yaml.safe_dump(data, sort_keys=False)
    if header:
        text = "".join(f"# {line}\n" for line in header.splitlines()) + text
    return text
