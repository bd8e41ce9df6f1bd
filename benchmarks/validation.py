"""Benchmark: knot's ``validate`` against Pandera's ``schema.validate(df, lazy=True)``.

1M rows x 10 columns, 10 value checks (plus Pandera's dtype and null checks). Runs,
side by side and interleaved, in one process against a temporary Prefect API:

- ``pandera clean``: ``schema.validate(clean, lazy=True)`` (the baseline);
- ``knot raise clean``: ``validate.fn(clean, contract, on_failure="raise")`` (knot's
  code: Pandera, the report, the artifact and the event), the same through the
  Prefect task (``validate(...)``: task run orchestration added), and the same without
  the artifact, event and log line (``validate_frame(..., publish_report=False)``),
  next to the time of one artifact round trip to the Prefect API alone;
- ``pandera dirty``: ``schema.validate(dirty, lazy=True)`` on data with 1% bad rows,
  collecting Pandera's failure cases (the baseline of quarantine);
- ``knot quarantine``: ``validate.fn(dirty, ..., on_failure="quarantine")``,
  including the append of the failing rows to a DuckDB table.

Every knot call runs inside a flow run, so artifacts are created as in production.
Prints, for each, the median wall time, the median CPU time of this process (steadier
on a machine shared with other work) and the best wall time, with the ratios against
the targets (<= 1.1x, <= 1.5x).

Run: ``.venv/bin/python benchmarks/validation.py [--rows N] [--repeats R]``
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def make_frame(rows: int, bad_fraction: float, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.uniform(0, 1_000, rows),
            "discount": rng.uniform(0, 0.5, rows),
            "score": rng.uniform(0, 1, rows),
            "latitude": rng.uniform(-90, 90, rows),
            "longitude": rng.uniform(-180, 180, rows),
            "weight": rng.uniform(0.1, 50, rows),
            "quantity": rng.integers(1, 100, rows),
            "age_days": rng.integers(0, 3_650, rows),
            "status": rng.choice(np.array(["open", "paid", "shipped"], dtype=object), rows),
            "country": rng.choice(np.array(["FR", "DE", "US", "JP"], dtype=object), rows),
        }
    )
    if bad_fraction:
        bad = rng.choice(rows, int(rows * bad_fraction), replace=False)
        # Spread the failures over several checks.
        frame.loc[bad[0::3], "amount"] = -1.0
        frame.loc[bad[1::3], "score"] = 2.0
        frame.loc[bad[2::3], "status"] = "lost"
    return frame


def make_schema() -> Any:
    import pandera.pandas as pa

    return pa.DataFrameSchema(
        {
            "amount": pa.Column(float, pa.Check.ge(0)),
            "discount": pa.Column(float, pa.Check.in_range(0, 0.5)),
            "score": pa.Column(float, pa.Check.le(1)),
            "latitude": pa.Column(float, pa.Check.in_range(-90, 90)),
            "longitude": pa.Column(float, pa.Check.in_range(-180, 180)),
            "weight": pa.Column(float, pa.Check.gt(0)),
            "quantity": pa.Column(int, pa.Check.ge(1)),
            "age_days": pa.Column(int, pa.Check.lt(10_000)),
            "status": pa.Column(str, pa.Check.isin(["open", "paid", "shipped"])),
            "country": pa.Column(str, pa.Check.str_length(2, 2)),
        },
        name="orders",
    )


def timed(function: Callable[[], Any]) -> tuple[float, float]:
    """Wall time and this process's CPU time of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from pandera.errors import SchemaErrors
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness

    from knot_prefect.blocks.contract import DataContract
    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse
    from knot_prefect.contracts.tasks import validate, validate_frame

    schema = make_schema()
    contract = DataContract(schema_yaml=schema.to_yaml())
    clean = make_frame(args.rows, 0.0)
    dirty = make_frame(args.rows, 0.01)
    workdir = Path(tempfile.mkdtemp(prefix="knot-bench-"))
    warehouse = DuckDBWarehouse(path=str(workdir / "bench.duckdb"))

    def pandera_clean() -> None:
        schema.validate(clean, lazy=True)

    def pandera_dirty() -> None:
        try:
            schema.validate(dirty, lazy=True)
        except SchemaErrors:
            pass
        else:
            raise AssertionError("the dirty frame must fail")

    def knot_raise() -> None:
        validate.fn(clean, contract, on_failure="raise")

    def knot_raise_no_report() -> None:
        validate_frame(clean, contract, on_failure="raise", publish_report=False)

    def artifact_round_trip() -> None:
        from prefect.artifacts import create_table_artifact

        create_table_artifact(
            table=[{"check": f"check-{i}", "failures": 0} for i in range(30)],
            key="benchmark-round-trip",
        )

    def knot_raise_task() -> None:
        validate(clean, contract, on_failure="raise")

    def knot_quarantine() -> None:
        valid = validate.fn(
            dirty,
            contract,
            on_failure="quarantine",
            max_bad_fraction=0.02,
            quarantine=(warehouse, "quarantine_orders"),
        )
        assert len(valid) == args.rows - int(args.rows * 0.01)

    cases = {
        "pandera clean": pandera_clean,
        "knot raise clean (validate.fn)": knot_raise,
        "knot raise clean (Prefect task)": knot_raise_task,
        "knot raise clean (no artifact/event/log)": knot_raise_no_report,
        "one artifact round trip to the Prefect API": artifact_round_trip,
        "pandera dirty (1% bad)": pandera_dirty,
        "knot quarantine (validate.fn, DuckDB write)": knot_quarantine,
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}

    @flow(name="validation-benchmark")
    def run_all() -> None:
        for function in cases.values():  # warm-up: imports, caches, the DuckDB file
            function()
        order = list(cases)
        shuffle = random.Random(11).shuffle
        for _ in range(args.repeats):
            shuffle(order)  # no case always follows the same neighbour
            for name in order:
                times[name].append(timed(cases[name]))

    load = os.getloadavg()[0]
    with prefect_test_harness(server_startup_timeout=180):
        run_all()

    print(f"rows={args.rows:,} columns=10 checks=10 repeats={args.repeats}")
    print(f"load average before the runs: {load:.1f} on {os.cpu_count()} cores")
    views = (
        ("median wall time", 0, statistics.median),
        ("median CPU time of this process", 1, statistics.median),
        ("best (minimum) wall time", 0, min),
    )
    for title, index, statistic in views:
        medians = {name: statistic(v[index] for v in values) for name, values in times.items()}
        print(f"{title}:")
        for name, value in medians.items():
            print(f"  {name:<46} {value:7.3f} s")
        report_ratios(medians)


def report_ratios(medians: dict[str, float]) -> None:
    base_clean = medians["pandera clean"]
    base_dirty = medians["pandera dirty (1% bad)"]
    quarantine = medians["knot quarantine (validate.fn, DuckDB write)"]
    raise_fn = medians["knot raise clean (validate.fn)"]
    raise_task = medians["knot raise clean (Prefect task)"]
    raise_quiet = medians["knot raise clean (no artifact/event/log)"]
    ratios = [
        ("raise, clean, validate.fn / pandera clean", raise_fn / base_clean, 1.1),
        ("raise, clean, Prefect task / pandera clean", raise_task / base_clean, None),
        ("raise, clean, no artifact / pandera clean", raise_quiet / base_clean, None),
        ("quarantine 1% / pandera dirty", quarantine / base_dirty, 1.5),
        ("quarantine 1% / pandera clean", quarantine / base_clean, None),
    ]
    for label, ratio, target in ratios:
        verdict = (
            ""
            if target is None
            else f"  (target <= {target}x: {'met' if ratio <= target else 'MISSED'})"
        )
        print(f"  {label:<46} {ratio:5.2f}x{verdict}")


if __name__ == "__main__":
    main()
