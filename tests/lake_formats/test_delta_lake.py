"""DeltaLake beyond the shared contract: one transaction per commit, versions, conflicts.

Runs on a local folder and on moto's S3 (delta-rs commits there with S3's
conditional writes); tables are checked with delta-rs and Polars themselves, so
what knot writes is a Delta table to any other engine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from knot_prefect.blocks.warehouses.base import ConcurrentWriteError, SchemaMismatchError


def scores(ids: list[int], score: float) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "score": [score] * len(ids)})


def table(lake: Any, name: str = "scores") -> list[tuple[int, float]]:
    rows = lake.read_table_arrow(name).to_pylist()
    return sorted((row["id"], row["score"]) for row in rows)


def delta_table(lake: Any, name: str = "scores") -> Any:
    from deltalake import DeltaTable

    location = lake._location()
    return DeltaTable(lake.table_uri(name), storage_options=location.options)


def test_staged_parts_are_invisible_until_one_transaction_commits_them(delta: Any) -> None:
    stage_id = delta.new_stage_id()
    first = delta.stage((scores(ids, 1.0) for ids in ([1, 2], [3])), "scores", stage_id, 0,
                        unique_keys=["id"])
    second = delta.stage(scores([4], 2.0), "scores", stage_id, 1)
    assert not delta.table_exists("scores")

    # A new table takes the staged files into its log as they are: version 0.
    assert delta.commit_staged("scores", [first, second], keys=["id"]) == 4
    log = delta_table(delta)
    assert log.version() == 0
    staged_files = sorted(e["path"] for part in (first, second) for e in part.files)
    assert sorted(log.get_add_actions(flatten=True).column("path").to_pylist()) == staged_files

    # An upsert into the table: every part in ONE new version (a single MERGE).
    stage_id = delta.new_stage_id()
    parts = [delta.stage(scores([2, 5], 3.0), "scores", stage_id, 0),
             delta.stage(scores([6], 3.0), "scores", stage_id, 1)]
    assert table(delta) == [(1, 1.0), (2, 1.0), (3, 1.0), (4, 2.0)]
    assert delta.commit_staged("scores", parts, keys=["id"]) == 3
    assert delta.table_version("scores") == 1
    assert table(delta) == [(1, 1.0), (2, 3.0), (3, 1.0), (4, 2.0), (5, 3.0), (6, 3.0)]
    history = [entry["operation"] for entry in delta_table(delta).history()]
    assert history == ["MERGE", "CREATE TABLE"]


def test_repeated_staged_keys_are_refused_and_discard_leaves_no_files(local_delta: Any) -> None:
    local_delta.write(scores([1], 0.0), "scores")
    stage_id = local_delta.new_stage_id()
    parts = [local_delta.stage(scores([2], 1.0), "scores", stage_id, 0),
             local_delta.stage(scores([2], 1.0), "scores", stage_id, 1)]
    with pytest.raises(SchemaMismatchError, match="repeat"):
        local_delta.commit_staged("scores", parts, keys=["id"])
    assert table(local_delta) == [(1, 0.0)] and local_delta.table_version("scores") == 0
    local_delta.discard_staged(parts)
    storage = local_delta._location().storage
    assert storage.fs.glob(f"{storage.root}/scores/data/*") == []


def test_every_write_is_a_version_and_old_versions_read_back_exactly(delta: Any) -> None:
    delta.write(scores([1, 2], 0.0), "scores")
    delta.write(scores([2, 3], 1.0), "scores", mode="upsert", keys=["id"])
    delta.write(scores([9], 9.0), "scores", mode="replace")
    assert delta.table_version("scores") == 2
    assert delta.read_table_arrow("scores", version=1).sort_by("id").to_pylist() == [
        {"id": 1, "score": 0.0}, {"id": 2, "score": 1.0}, {"id": 3, "score": 1.0}]
    rows, versions = delta.read_versioned("SELECT sum(score) AS s FROM scores",
                                          versions={"scores": 0})
    assert rows.column("s").to_pylist() == [0.0] and versions == {"scores": 0}


def test_a_conflicting_concurrent_commit_is_a_retryable_error_and_commits_nothing(
    delta: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knot_prefect.blocks.warehouses.delta import writes

    delta.write(scores([1, 2], 0.0), "scores")
    stale = delta_table(delta)  # this writer read version 0 ...
    delta.write(scores([2], 5.0), "scores", mode="upsert", keys=["id"])  # ... another wrote 1
    monkeypatch.setattr(writes, "open_table", lambda *args, **kwargs: stale)
    with pytest.raises(ConcurrentWriteError, match="retrying the write is safe"):
        delta.write(scores([1], 7.0), "scores", mode="upsert", keys=["id"])
    monkeypatch.undo()
    assert table(delta) == [(1, 0.0), (2, 5.0)] and delta.table_version("scores") == 1
    delta.write(scores([1], 7.0), "scores", mode="upsert", keys=["id"])  # the retry lands
    assert table(delta) == [(1, 7.0), (2, 5.0)]


@pytest.mark.heavy
def test_killed_mid_commit_the_table_is_at_a_version_never_between(local_delta: Any) -> None:
    """A writer appending 1000-row batches is SIGKILLed while it writes and commits."""
    local_delta.write(pd.DataFrame({"id": [0], "score": [0.0]}), "scores")
    script = textwrap.dedent(
        """
        import json, sys
        import pandas as pd
        from knot_prefect.blocks.warehouses.delta_lake import DeltaLake

        lake = DeltaLake.model_validate(json.loads(sys.stdin.readline()))
        frame = pd.DataFrame({"id": range(1000), "score": 1.0})
        lake.write(frame, "scores")
        print("WRITING", flush=True)
        while True:
            lake.write(frame, "scores")
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env={**os.environ})
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(json.dumps(local_delta.model_dump(mode="json")) + "\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "WRITING"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)

    version = local_delta.table_version("scores")
    assert version >= 1
    rows = local_delta.read_table_arrow("scores").num_rows
    assert rows == 1 + 1000 * version  # every committed version whole, nothing partial
    local_delta.write(scores([5], 5.0), "scores")  # and the table takes new writes
    assert local_delta.table_version("scores") == version + 1


def test_other_engines_read_what_knot_wrote_and_knot_reads_theirs(delta: Any) -> None:
    import polars as pl
    from deltalake import write_deltalake

    delta.write(scores([1, 2], 0.5), "scores")
    delta.write(scores([2], 0.9), "scores", mode="upsert", keys=["id"])
    options = delta._location().options
    by_polars = pl.read_delta(delta.table_uri("scores"), storage_options=options or None)
    assert sorted(by_polars.rows()) == [(1, 0.5), (2, 0.9)]
    by_arrow = delta_table(delta).to_pyarrow_dataset().to_table().sort_by("id")
    assert by_arrow.to_pylist() == [{"id": 1, "score": 0.5}, {"id": 2, "score": 0.9}]

    write_deltalake(delta.table_uri("theirs"), pa.table({"id": [7], "name": ["x"]}),
                    storage_options=options or None)
    assert delta.list_tables() == ["scores", "theirs"]
    assert delta.read("SELECT name FROM theirs WHERE id = :id", {"id": 7})["name"].tolist() \
        == ["x"]


def test_optimize_and_vacuum_keep_the_rows_and_remove_unused_files(local_delta: Any) -> None:
    from knot_prefect.tasks import optimize_delta_table, vacuum_delta_table

    for ids in ([1], [2], [3]):
        local_delta.write(scores(ids, 1.0), "scores")
    metrics = optimize_delta_table.fn(local_delta, "scores")
    assert (metrics["numFilesRemoved"], metrics["numFilesAdded"]) == (3, 1)
    removed = vacuum_delta_table.fn(local_delta, "scores", retain_hours=0)
    assert len(removed) == 3
    assert table(local_delta) == [(1, 1.0), (2, 1.0), (3, 1.0)]


def test_frames_delta_cannot_hold_unchanged_are_refused(local_delta: Any) -> None:
    import datetime as dt

    nanos = pd.DataFrame({"id": [1], "at": [pd.Timestamp("2024-01-01 00:00:00.000000001")]})
    with pytest.raises(SchemaMismatchError, match="microseconds"):
        local_delta.write(nanos, "events")
    times = pa.table({"id": [1], "t": pa.array([dt.time(12, 0)], pa.time64("us"))})
    with pytest.raises(SchemaMismatchError, match=r"'t'.*cannot hold"):
        local_delta.write(times, "events")
    assert not local_delta.table_exists("events")
