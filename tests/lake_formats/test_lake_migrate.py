"""``knot lake migrate`` turns a ParquetLake table into a Delta table: the live rows
only, in one commit, refusing to overwrite an existing Delta table unless told."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
from typer.testing import CliRunner

from knot_prefect import DeltaLake, ParquetLake
from knot_prefect.cli.main import app


def parquet_table(root: Path) -> ParquetLake:
    """A table written by this release: replaced, upserted and appended (superseded
    files stay until a vacuum), with a dictionary column and UTC timestamps."""
    lake = ParquetLake(path=str(root), rows_per_file=2)
    day = datetime(2026, 11, 1, tzinfo=UTC)
    first = pd.DataFrame({"id": [1, 2, 3], "score": [0.1, 0.2, 0.3], "at": [day] * 3})
    lake.write(first, "scores", mode="replace")
    lake.write(first.assign(score=9.0).head(1), "scores", mode="replace")
    lake.write(pd.DataFrame({"id": [1, 4], "score": [0.5, 0.4], "at": [day] * 2}),
               "scores", mode="upsert", keys=["id"])
    model = pa.array(["m1"] * 2).dictionary_encode()
    lake.write(pa.table({"id": [5, 6], "score": [0.6, 0.7], "at": pa.array([day] * 2),
                         "model": model}), "scores", mode="append", evolve=True)
    return lake


def test_migrate_writes_the_live_rows_in_one_commit_and_refuses_to_overwrite(
    tmp_path: Path,
) -> None:
    parquet = parquet_table(tmp_path / "lake")
    expected = parquet.read("SELECT * FROM scores ORDER BY id")
    assert len(list((tmp_path / "lake" / "scores").rglob("*.parquet"))) > len(
        expected) // 2  # superseded files are still there
    target = tmp_path / "delta" / "scores"
    runner = CliRunner()

    result = runner.invoke(app, ["lake", "migrate", str(tmp_path / "lake" / "scores"),
                                 "--to", str(target)])
    assert result.exit_code == 0, result.output
    assert "Migrated 4 rows" in result.output and "version 0" in result.output
    delta = DeltaLake(path=str(tmp_path / "delta"))
    migrated = delta.read("SELECT * FROM scores ORDER BY id")
    pd.testing.assert_frame_equal(migrated, expected, check_dtype=False)
    assert delta.table_version("scores") == 0
    assert migrated["at"].dt.tz is not None  # still UTC timestamps

    # An existing Delta table is kept unless --overwrite is given.
    parquet.write(pd.DataFrame({"id": [7], "score": [1.0]}), "scores", mode="append")
    result = runner.invoke(app, ["lake", "migrate", str(tmp_path / "lake" / "scores"),
                                 "--to", str(target)])
    assert result.exit_code != 0
    assert "already a Delta table" in result.output and "--overwrite" in result.output
    assert delta.table_version("scores") == 0
    result = runner.invoke(app, ["lake", "migrate", str(tmp_path / "lake" / "scores"),
                                 "--to", str(target), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert delta.table_version("scores") == 1
    assert delta.read("SELECT count(*) AS n FROM scores")["n"].tolist() == [5]


def test_migrate_names_a_source_that_is_no_parquet_table(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["lake", "migrate", str(tmp_path), "--to",
                                      str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "holds no _manifest.json" in result.output
    result = CliRunner().invoke(app, ["lake", "migrate", "no-such-document", "--to",
                                      str(tmp_path / "out")])
    assert result.exit_code != 0 and "--table" in result.output
