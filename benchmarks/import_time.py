"""Import and CLI start-up time of knot against Prefect, measured side by side.

Run: ``.venv/bin/python benchmarks/import_time.py [--runs N]``

Each command runs in a fresh process, alternating knot and its baseline so both see
the same machine noise; the medians and their ratios are printed with the targets.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent

PAIRS = [
    # (label, knot command, baseline command, target ratio)
    (
        "import knot_prefect / import prefect",
        [sys.executable, "-c", "import knot_prefect"],
        [sys.executable, "-c", "import prefect"],
        1.15,
    ),
    (
        "knot --help / prefect --help",
        [str(BIN / "knot"), "--help"],
        [str(BIN / "prefect"), "--help"],
        1.0,
    ),
    (
        "from knot_prefect import DuckDBWarehouse / import prefect.blocks.core",
        [sys.executable, "-c", "from knot_prefect import DuckDBWarehouse"],
        [sys.executable, "-c", "import prefect.blocks.core"],
        None,
    ),
]


def wall_time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="Runs of each command.")
    args = parser.parse_args()
    failed = False
    print(f"{'comparison':70} {'knot s':>8} {'base s':>8} {'ratio':>6} {'target':>7}")
    for label, knot, base, target in PAIRS:
        wall_time(knot), wall_time(base)  # Warm the file system cache.
        knot_times, base_times = [], []
        for _ in range(args.runs):
            knot_times.append(wall_time(knot))
            base_times.append(wall_time(base))
        knot_median, base_median = statistics.median(knot_times), statistics.median(base_times)
        ratio = knot_median / base_median
        verdict = "" if target is None else ("ok" if ratio <= target else "MISSED")
        failed |= verdict == "MISSED"
        target_text = "-" if target is None else f"<={target}"
        print(f"{label:70} {knot_median:8.3f} {base_median:8.3f} {ratio:6.2f} "
              f"{target_text:>7} {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
