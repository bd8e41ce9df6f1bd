"""knot's Feast tasks against calling Feast directly, measured side by side.

Run: ``.venv/bin/python benchmarks/features.py [--rows N] [--runs N] [--lookups N]``

Builds a local Feast repo (SQLite online store, file offline store) in a temp folder
with ``--rows`` entities, one row each, then alternates:

- materialize: ``materialize.fn(block, ...)`` (the task's function, without the
  Prefect engine) against ``FeatureStore.materialize`` over the same window; both
  rewrite every row each run. Target: ratio <= 1.05.
- online features for 100 entities: ``online_features.fn(block, ...)`` against
  ``FeatureStore.get_online_features(...).to_df()``. Target: median within +2 ms.

With ``--prefect`` it also times both tasks called through the Prefect engine inside
one flow run (task-run bookkeeping included; starts a temporary Prefect API).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

DEFINITIONS = """
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
activity = FeatureView(
    name="activity",
    entities=[customer],
    ttl=timedelta(days=30),
    schema=[
        Field(name="spend", dtype=Float64),
        Field(name="orders", dtype=Int64),
        Field(name="visits", dtype=Int64),
    ],
    source=FileSource(path="data/activity.parquet", timestamp_field="event_timestamp"),
)
"""


def build_repo(folder: Path, rows: int, end: datetime) -> None:
    import numpy as np
    import pandas as pd

    from knot_prefect.features.local_repo import write_local_feature_store_yaml

    write_local_feature_store_yaml(folder, "bench")
    (folder / "definitions.py").write_text(DEFINITIONS)
    generator = np.random.default_rng(7)
    offsets = generator.integers(60, 20 * 86400, rows)
    pd.DataFrame(
        {
            "customer_id": np.arange(rows, dtype="int64"),
            "spend": generator.random(rows) * 100,
            "orders": generator.integers(0, 50, rows),
            "visits": generator.integers(0, 500, rows),
            "event_timestamp": pd.to_datetime(end) - pd.to_timedelta(offsets, unit="s"),
        }
    ).to_parquet(folder / "data" / "activity.parquet")


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def timed_both(function: Callable[[], object]) -> tuple[float, float]:
    """Wall time and this process's CPU time (less sensitive to other processes' load)."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def alternate(
    knot: Callable[[], object], direct: Callable[[], object], runs: int, scale: float = 1.0
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Run both sides ``runs`` times, swapping which goes first on every round."""
    knot_wall, direct_wall, knot_cpu, direct_cpu = [], [], [], []
    for round_number in range(runs):
        order = [("knot", knot), ("direct", direct)]
        if round_number % 2 == 0:
            order.reverse()
        for side, function in order:
            wall, cpu = timed_both(function)
            if side == "knot":
                knot_wall.append(wall * scale)
                knot_cpu.append(cpu * scale)
            else:
                direct_wall.append(wall * scale)
                direct_cpu.append(cpu * scale)
    return knot_wall, direct_wall, knot_cpu, direct_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=4, help="materialize runs per side")
    parser.add_argument("--lookups", type=int, default=500, help="online lookups per side")
    parser.add_argument("--prefect", action="store_true", help="also time through Prefect")
    args = parser.parse_args()
    logging.getLogger("knot_prefect").setLevel(logging.WARNING)

    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.tasks.features import feast_apply, materialize, online_features

    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=21)
    folder = Path(tempfile.mkdtemp(prefix="knot-feast-bench-"))
    print(f"Building a repo with {args.rows:,} rows in {folder} ...")
    build_repo(folder, args.rows, end)
    block = FeastFeatureStore(repo_path=str(folder))
    feast_apply.fn(block)
    store = block.get_store()  # the same feast.FeatureStore both sides use

    def direct_materialize() -> None:
        store.materialize(start_date=start, end_date=end, feature_views=["activity"])

    def knot_materialize() -> None:
        result = materialize.fn(block, views=["activity"], end=end, incremental=False, start=start)
        assert result[0]["rows"] == args.rows, result

    knot_wall, direct_wall, knot_cpu, direct_cpu = alternate(
        knot_materialize, direct_materialize, args.runs
    )
    label = f"materialize {args.rows:,} rows"
    report(f"{label}, wall (s)", knot_wall, direct_wall, "ratio", 1.05)
    report(f"{label}, CPU (s)", knot_cpu, direct_cpu, "ratio", 1.05)

    refs = ["activity:spend", "activity:orders", "activity:visits"]
    rows = [{"customer_id": i * 7 % args.rows} for i in range(100)]

    def direct_online() -> None:
        store.get_online_features(features=refs, entity_rows=rows).to_df()

    def knot_online() -> None:
        online_features.fn(block, rows, refs)

    for _ in range(10):  # warm both paths (registry cache, connections)
        direct_online()
        knot_online()
    knot_wall, direct_wall, knot_cpu, direct_cpu = alternate(
        knot_online, direct_online, args.lookups, scale=1000
    )
    report("online_features, 100 entities, wall (ms)", knot_wall, direct_wall, "delta", 2.0)
    report("online_features, 100 entities, CPU (ms)", knot_cpu, direct_cpu, "delta", 2.0)

    if args.prefect:
        through_prefect(block, store, start, end, refs, rows, args)


def through_prefect(block, store, start, end, refs, rows, args) -> None:  # type: ignore[no-untyped-def]
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness

    from knot_prefect.tasks.features import materialize, online_features

    @flow
    def bench() -> tuple[list[float], list[float], list[float], list[float]]:
        knot_mat, direct_mat, knot_online, direct_online = [], [], [], []
        for _ in range(args.runs):
            direct_mat.append(
                timed(
                    lambda: store.materialize(
                        start_date=start, end_date=end, feature_views=["activity"]
                    )
                )
            )
            knot_mat.append(
                timed(
                    lambda: materialize(
                        block, views=["activity"], end=end, incremental=False, start=start
                    )
                )
            )
        for _ in range(50):
            direct_online.append(
                timed(lambda: store.get_online_features(features=refs, entity_rows=rows).to_df())
                * 1000
            )
            knot_online.append(timed(lambda: online_features(block, rows, refs)) * 1000)
        return knot_mat, direct_mat, knot_online, direct_online

    with prefect_test_harness(server_startup_timeout=120):
        knot_mat, direct_mat, knot_online, direct_online = bench()
    report("through Prefect: materialize (s)", knot_mat, direct_mat, "ratio", 1.05)
    report("through Prefect: online_features (ms)", knot_online, direct_online, "delta", 2.0)


def report(label: str, knot: list[float], baseline: list[float], kind: str, target: float) -> None:
    knot_median, base_median = statistics.median(knot), statistics.median(baseline)
    if kind == "ratio":
        value = knot_median / base_median
        verdict = "meets" if value <= target else "MISSES"
        figure = f"ratio {value:.3f} ({verdict} target <= {target})"
    else:
        value = knot_median - base_median
        verdict = "meets" if value <= target else "MISSES"
        figure = f"delta {value:+.3f} ms ({verdict} target <= +{target} ms)"
    print(f"{label}: knot median {knot_median:.3f}, Feast directly {base_median:.3f}; {figure}")


if __name__ == "__main__":
    main()
