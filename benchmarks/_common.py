"""What the benchmarks share: the repository root, quiet services, the performance page.

Each benchmark is one command (``.venv/bin/python benchmarks/NAME.py``) that measures
knot against its named baseline side by side and writes its section of
``docs/performance.md`` between two markers, ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PERFORMANCE_DOC = ROOT / "docs" / "performance.md"


def prepare() -> None:
    """Make the repository importable (``tests.services``) and keep services quiet."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def median_time(function: Callable[[], Any], repeat: int, warm_up: bool = False) -> float:
    """The median wall time of ``repeat`` calls of ``function``, in seconds.

    Args:
        function: What to time.
        repeat: Timed calls.
        warm_up: Call ``function`` once, untimed, first (imports, page cache).
    """
    if warm_up:
        function()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def write_performance_section(marker: str, heading: str, text: str) -> None:
    """Put ``text`` between the ``marker`` comments of the performance page.

    The section is replaced where the markers already are; otherwise it is appended
    under ``## heading``.
    """
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    block = f"{start}\n{text}\n{end}"
    content = PERFORMANCE_DOC.read_text() if PERFORMANCE_DOC.exists() else "# Performance\n"
    if start in content and end in content:
        content = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block,
                         content, flags=re.S)
    else:
        content = content.rstrip("\n") + f"\n\n## {heading}\n\n{block}\n"
    PERFORMANCE_DOC.write_text(content)
