"""IcebergTable's write against pyiceberg's own ``append``, side by side.

Run: ``.venv/bin/python benchmarks/lake_formats_iceberg.py [--rows N] [--runs N]``

The same frame (``--rows`` x 10 mixed columns, as in ``parquet_lake.py``) is written
as a new table, alternately by ``IcebergTable.write`` (SQLite catalog in the lake's
folder) and by pyiceberg called directly (``create_table`` + ``append`` on a SQLite
catalog); the medians and the ratio (baseline time / knot time; higher is better for
knot, target >= 0.9) are printed.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

from _common import median_time
from parquet_lake import frame


def iceberg_side(rows: int, runs: int) -> tuple[float, float]:
    """Median seconds of knot's write and of pyiceberg's append of ``rows`` rows."""
    from pyiceberg.catalog.sql import SqlCatalog

    from knot_prefect import IcebergTable

    data = frame(rows)
    root = Path(tempfile.mkdtemp(prefix="knot-iceberg-bench-"))
    counter = itertools.count()

    def knot() -> None:
        IcebergTable(path=str(root / f"knot-{next(counter)}")).write(data, "bench")

    def direct() -> None:
        folder = root / f"direct-{next(counter)}"
        folder.mkdir()
        catalog = SqlCatalog("bench", uri=f"sqlite:///{folder}/catalog.sqlite",
                             warehouse=str(folder))
        catalog.create_namespace("default")
        table = catalog.create_table(("default", "bench"), schema=data.schema,
                                     location=str(folder / "bench"))
        table.append(data)

    knot_seconds = median_time(knot, runs, warm_up=True)
    direct_seconds = median_time(direct, runs, warm_up=True)
    return knot_seconds, direct_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    knot_seconds, direct_seconds = iceberg_side(args.rows, args.runs)
    print(f"write {args.rows:,} x 10: IcebergTable {knot_seconds:.2f}s, pyiceberg append "
          f"{direct_seconds:.2f}s, ratio {direct_seconds / knot_seconds:.2f}x")


if __name__ == "__main__":
    main()
