"""What the benchmarks share: the repository root, quiet services, the performance page.

Each benchmark is one command (``.venv/bin/python benchmarks/NAME.py``) that measures
knot against its named baseline side by side and writes its section of
``docs/performance.md`` between two markers, ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
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


# -- one side of a comparison in a fresh process -------------------------------------------------
def peak_rss_kb() -> int:
    """This process's peak resident memory, in kB.

    ``VmHWM`` belongs to the running program only. ``ru_maxrss`` is not used on Linux:
    it keeps the peak of the process before ``exec`` too, i.e. the benchmark parent's
    memory at the fork, which would be reported as the child's.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def print_child_result(**measured: Any) -> None:
    """In the child: print what it measured, with its peak RSS, as the JSON line read back."""
    print(json.dumps({**measured, "peak_rss_mb": peak_rss_kb() / 1024}), flush=True)


def run_child(script: str | Path, *arguments: str,
              environment: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run one side of a benchmark in a fresh Python process; return what it measured.

    A fresh process per side keeps one side's imports, caches and peak memory out of
    the other's. The child times its own work and ends with :func:`print_child_result`.

    Args:
        script: The benchmark script, run as ``python script *arguments``.
        arguments: Its command-line arguments (say ``--child 1000000``).
        environment: The child's environment (default: this process's); the Prefect
            API and ``KNOT_HOME`` of this run are added, so it sees the same blocks.

    Returns:
        The child's last JSON line: its own fields and ``peak_rss_mb``.
    """
    env = {**(os.environ if environment is None else environment)}
    env.update({name: os.environ[name] for name in ("PREFECT_API_URL", "KNOT_HOME")
                if name in os.environ})
    completed = subprocess.run([sys.executable, str(script), *arguments], capture_output=True,
                               text=True, env=env)
    if completed.returncode:
        raise RuntimeError(f"{Path(script).name} {' '.join(arguments)} failed "
                           f"(exit {completed.returncode}):\n{completed.stderr[-4000:]}")
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{Path(script).name} {' '.join(arguments)} printed no result:\n"
                           f"{completed.stdout[-2000:]}{completed.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result
