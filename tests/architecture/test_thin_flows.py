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
        tree = ast.parse(path.read_text(), str(path))
        own_flows = flows_defined(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "fn":
                # A flow may hand its own body to a helper (a backfill runs it per
                # partition inside a task) without starting a subflow.
                if isinstance(node.value, ast.Name) and node.value.id in own_flows:
                    continue
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def flows_defined(tree: ast.Module) -> set[str]:
    """The names of the ``@flow``-decorated functions a module defines."""
    def is_flow(decorator: ast.expr) -> bool:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        return isinstance(target, ast.Name) and target.id == "flow"

    return {node.name for node in tree.body
            if isinstance(node, ast.FunctionDef) and any(map(is_flow, node.decorator_list))}


def test_flows_call_plain_functions_not_task_fn() -> None:
    # A task's plain function has a name of its own (``validate_frame`` beside
    # ``validate``), typed and documented; flows call it where no task run is wanted.
    assert task_functions_used() == []


def test_a_task_fn_is_found_and_a_flow_handing_over_its_own_body_is_not(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(
        "from prefect import flow, task\n"
        "@task\ndef fit(): ...\n"
        "@flow(name='x')\ndef scoring():\n    fit.fn()\n    helper(scoring.fn)\n")
    assert task_functions_used(tmp_path) == ["flows.py:6 fit.fn"]
