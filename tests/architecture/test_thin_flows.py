"""Flows call tasks or the plain functions beside them, never a task's ``.fn``."""

from __future__ import annotations

import ast
from pathlib import Path

import knot_prefect

FLOWS_DIR = Path(knot_prefect.__file__).parent / "flows"
# Reads each flow's docstring and signature from ``flow.fn`` to build the reference.
READS_SIGNATURES = {"reference.py"}


def task_functions_used(folder: Path = FLOWS_DIR) -> list[str]:
    """``file:line name.fn`` for every ``.fn`` attribute read in the flow modules."""
    found = []
    for path in sorted(folder.glob("*.py")):
        if path.name in READS_SIGNATURES:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr == "fn":
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def test_flows_call_plain_functions_not_task_fn() -> None:
    # A task's plain function has a name of its own (``validate_frame`` beside
    # ``validate``), typed and documented; flows call it where no task run is wanted.
    assert task_functions_used() == []


def test_any_fn_is_found_a_flow_handing_over_its_own_body_too(tmp_path: Path) -> None:
    # A flow whose body is needed elsewhere (a backfill scoring each partition) gives it
    # a plain function that the flow and the other caller both call.
    (tmp_path / "flows.py").write_text(
        "from prefect import flow, task\n"
        "@task\ndef fit(): ...\n"
        "@flow(name='x')\ndef scoring():\n    fit.fn()\n    helper(scoring.fn)\n")
    assert task_functions_used(tmp_path) == ["flows.py:6 fit.fn", "flows.py:7 scoring.fn"]
