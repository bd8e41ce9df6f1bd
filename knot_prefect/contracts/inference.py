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
    schema = _bounds_as_text_where_zoned(schema)
    if not bounds:
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


def _bounds_as_text_where_zoned(schema: Any) -> Any:
    """Time-zone-aware bounds as ISO text, the form Pandera's YAML writer can hold.

    Pandera writes naive timestamps as text but fails on zoned ones; pandas compares a zoned
    column with ISO text that carries its offset, so the checks keep their meaning.
    """
    import pandas as pd
    import pandera.pandas as pa

    updates: dict[str, dict[str, Any]] = {}
    for name, column in schema.columns.items():
        if not isinstance(getattr(column.dtype, "type", None), pd.DatetimeTZDtype):
            continue
        checks = []
        for check in column.checks:
            statistics = {key: value.isoformat() if isinstance(value, pd.Timestamp) else value
                          for key, value in (check.statistics or {}).items()}
            checks.append(getattr(pa.Check, check.name)(**statistics))
        updates[name] = {"checks": checks}
    return schema.update_columns(updates) if updates else schema
