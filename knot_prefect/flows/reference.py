"""The parameter reference of every flow template, generated from the flows themselves.

Each parameter's type, default and description come from the flow's signature and its
docstring (as Prefect parses them for deployments and the UI form), so the page cannot
drift from the code. Regenerate it with::

    python -m knot_prefect.flows.reference docs/flow-parameters.md
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

from knot_prefect._registry import FLOW_EXPORTS

HEADER = """# Flow parameter reference

Generated from the flow templates' signatures and docstrings by
`python -m knot_prefect.flows.reference docs/flow-parameters.md`; a test fails when a
parameter is undocumented or this page is out of date.

Every flow that takes `spec` reads the parameters it is not given from that
[model spec](bring-your-own-table.md#the-model-spec); a parameter given explicitly wins.
"""


def flow_objects() -> dict[str, Any]:
    """Every flow template by name, in the registry's order."""
    return {name: getattr(importlib.import_module(module), name)
            for name, module in FLOW_EXPORTS.items()}


def undocumented(flow: Any) -> list[str]:
    """Parameters of ``flow`` whose docstring gives no description."""
    return [name for name, schema in flow.parameters.properties.items()
            if not (schema.get("description") or "").strip()]


def parameter_reference() -> str:
    """The markdown page: one table per flow template."""
    sections = [HEADER]
    for name, flow in flow_objects().items():
        summary = (inspect.getdoc(flow.fn) or "").split("\n\n")[0].replace("\n", " ")
        summary = summary.replace("``", "`")
        lines = [f"## `{name}`", "", summary, "",
                 "| parameter | type | default | meaning |", "|---|---|---|---|"]
        signature = inspect.signature(flow.fn)
        for parameter, schema in flow.parameters.properties.items():
            default = signature.parameters[parameter].default
            shown = "required" if default is inspect.Parameter.empty else f"`{default!r}`"
            annotation = str(signature.parameters[parameter].annotation).replace("|", "\\|")
            description = " ".join((schema.get("description") or "").split())
            description = description.replace("``", "`").replace("|", "\\|")
            lines.append(f"| `{parameter}` | `{annotation}` | {shown} | {description} |")
        sections.append("\n".join(lines) + "\n")
    return "\n".join(sections)


def main(argv: list[str]) -> int:
    """Write the reference to the path given (or print it)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m knot_prefect.flows.reference",
        description="Write the flow parameter reference (markdown) to PATH, or print it.",
    )
    parser.add_argument("path", nargs="?", type=Path, help="the page to write, e.g. "
                        "docs/flow-parameters.md; printed when left out")
    arguments = parser.parse_args(argv)
    text = parameter_reference()
    if arguments.path:
        arguments.path.write_text(text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
