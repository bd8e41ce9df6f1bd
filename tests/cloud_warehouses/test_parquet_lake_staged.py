"""ParquetLake staged writes: parts written apart, published in one manifest switch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from knot_prefect.blocks.warehouses.base import SchemaMismatchError, WarehouseError
from knot_prefect.blocks.warehouses.parquet import ParquetLake


@pytest.fixture
def local(tmp_path: Path) -> ParquetLake:
    return ParquetLake(path=str(tmp_path / "lake"), rows_per_file=2)


def rows(ids: list[int], score: float) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "score": [score] * len(ids), "tag": [f"t{i}" for i in ids]})


def table(lake: ParquetLake, name: str = "scores") -> pd.DataFrame:
    return lake.read(f"SELECT * FROM {name} ORDER BY id").reset_index(drop=True)


def test_staged_parts_are_invisible_until_one_commit_upserts_them_all(
    lake: ParquetLake,
) -> None:
    lake.write(rows([1, 2, 3], 0.0), "scores")
    stage = lake.new_stage_id()
    # One part from a stream of frames, another from one frame (as two workers would).
    first = lake.stage((rows(ids, 1.0) for ids in ([2], [4])), "scores", stage, 0)
    second = lake.stage(rows([5], 2.0), "scores", stage, 1)
    assert (first.rows, second.rows) == (2, 1)
    assert table(lake)["score"].tolist() == [0.0, 0.0, 0.0]  # nothing visible yet

    assert lake.commit_staged("scores", [first, second], keys=["id"]) == 3
    result = table(lake)
    assert result["id"].tolist() == [1, 2, 3, 4, 5]
    assert result["score"].tolist() == [0.0, 1.0, 0.0, 1.0, 2.0]
    assert result["tag"].tolist() == ["t1", "t2", "t3", "t4", "t5"]


def test_restaging_a_part_overwrites_it_and_a_new_table_is_created(
    lake: ParquetLake,
) -> None:
    stage = lake.new_stage_id()
    lake.stage(rows([1, 2], 9.0), "fresh", stage, 0)
    retried = lake.stage(rows([1, 2], 1.0), "fresh", stage, 0)  # a retried task
    assert lake.commit_staged("fresh", [retried], keys=["id"]) == 2
    assert table(lake, "fresh")["score"].tolist() == [1.0, 1.0]


def test_repeated_or_null_keys_are_refused_and_the_table_is_unchanged(
    lake: ParquetLake,
) -> None:
    lake.write(rows([1, 2], 0.0), "scores")
    before = table(lake)
    stage = lake.new_stage_id()
    parts = [lake.stage(rows([2, 3], 1.0), "scores", stage, 0),
             lake.stage(rows([3], 2.0), "scores", stage, 1)]
    with pytest.raises(SchemaMismatchError, match=r"repeat.*'id': 3.*Nothing was written"):
        lake.commit_staged("scores", parts, keys=["id"])
    pd.testing.assert_frame_equal(table(lake), before)

    with pytest.raises(SchemaMismatchError, match=r"repeat.*'id': 7"):
        lake.stage(rows([7, 7], 1.0), "scores", stage, 2, unique_keys=["id"])
    nulls = pa.table({"id": pa.array([None, 8], pa.int64()), "score": [1.0, 1.0],
                      "tag": ["a", "b"]})
    with pytest.raises(SchemaMismatchError, match=r"null in 1 staged row"):
        lake.commit_staged("scores", [lake.stage(nulls, "scores", stage, 3)], keys=["id"])
    lake.discard_staged(parts)
    pd.testing.assert_frame_equal(table(lake), before)


def test_parts_of_differing_types_are_unified(local: ParquetLake) -> None:
    stage = local.new_stage_id()
    # An all-null column arrives as Arrow's null type in one part, as text in another.
    empty_tag = pa.table({"id": [1], "score": [0.5], "tag": pa.nulls(1)})
    parts = [local.stage(empty_tag, "scores", stage, 0),
             local.stage(rows([2], 0.7), "scores", stage, 1)]
    assert local.commit_staged("scores", parts, keys=["id"]) == 2
    result = table(local)
    assert result["tag"].tolist() == [None, "t2"]
    assert local.read_table_arrow("scores").schema.field("tag").type == pa.string()


def test_discarded_parts_leave_no_files_and_bad_stage_ids_are_refused(
    local: ParquetLake,
) -> None:
    local.write(rows([1], 0.0), "scores")
    folder = Path(local.location) / "scores" / "data"
    before = sorted(folder.iterdir())
    stage = local.new_stage_id()
    part = local.stage(rows([1, 2], 1.0), "scores", stage, 0)
    assert len(sorted(folder.iterdir())) > len(before)
    local.discard_staged([part])
    assert sorted(folder.iterdir()) == before
    with pytest.raises(WarehouseError, match="new_stage_id"):
        local.stage(rows([1], 1.0), "scores", "../elsewhere", 0)
    with pytest.raises(WarehouseError, match="parts staged for"):
        local.commit_staged("other", [local.stage(rows([3], 1.0), "scores", stage, 1)],
                            keys=["id"])


def test_each_mode_publishes_all_parts_in_one_switch(local: ParquetLake) -> None:
    from knot_prefect.blocks.warehouses.base import TableExistsError

    def parts(*groups: list[int]) -> list:  # type: ignore[type-arg]
        stage = local.new_stage_id()  # committed staged files are table files: a new id
        return [local.stage(rows(ids, float(n)), "scores", stage, n)
                for n, ids in enumerate(groups)]

    assert local.commit_staged("scores", parts([1], [2]), mode="append") == 2
    assert local.commit_staged("scores", parts([2]), mode="append") == 1  # no keys: added
    assert table(local)["id"].tolist() == [1, 2, 2]
    with pytest.raises(TableExistsError, match="mode='fail'"):
        local.commit_staged("scores", parts([9]), mode="fail")
    assert local.commit_staged("scores", parts([7], [8]), mode="replace") == 2
    assert table(local)["id"].tolist() == [7, 8]
    assert local.commit_staged("scores", parts([8], [9]), keys=["id"], mode="upsert") == 2
    assert table(local)[["id", "score"]].values.tolist() == [[7, 0.0], [8, 0.0], [9, 1.0]]
    fresh = local.stage(rows([1], 0.0), "fresh", local.new_stage_id())
    assert local.commit_staged("fresh", [fresh], mode="fail") == 1
    with pytest.raises(ValueError, match="needs keys"):
        local.commit_staged("scores", parts([1]), mode="upsert")
