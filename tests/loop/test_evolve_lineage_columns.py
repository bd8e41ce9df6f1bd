"""Publishing predictions adds only the named lineage columns to an existing table: a
table written before ``source_versions`` existed gains it, any other column the table
lacks is refused with the usual schema error and the table stays as it was."""

from __future__ import annotations

from typing import Any

import pytest

from knot_prefect import DeltaLake
from knot_prefect.blocks.warehouses.base import SchemaMismatchError
from tests.flows.test_staged_scoring import model
from tests.lake_formats.test_pinned_lineage import lake, score

__all__ = ["lake", "model"]  # fixtures shared with the pinned-lineage tests


@pytest.mark.parametrize("options", [{"partition_rows": 100}, {"stream": True}],
                         ids=["key-ranges", "streamed"])
def test_a_column_the_existing_table_lacks_is_refused_unless_it_is_lineage(
    lake: DeltaLake, model: str, options: dict[str, Any]
) -> None:
    # Another table under the output's name: it names its prediction `score`, and was
    # written before `source_versions` existed.
    score(**options)
    other = (lake.read_table("scores").drop(columns="source_versions")
             .rename(columns={"prediction": "score"}).head(10))
    lake.write(other, "scores", mode="replace")

    with pytest.raises(SchemaMismatchError, match=r"lacks: .*'prediction'"):
        score(**options)
    kept = lake.read_table("scores")
    assert sorted(kept.columns) == sorted(other.columns) and len(kept) == 10
