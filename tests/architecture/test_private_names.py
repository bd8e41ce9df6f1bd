"""Private names stay private: no module imports ``_name`` from another module."""

from __future__ import annotations

import ast
from pathlib import Path

import knot_prefect

PACKAGE_DIR = Path(knot_prefect.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def private_names_imported() -> list[str]:
    """Every ``from knot_prefect.X import _name`` in knot's own modules."""
    found = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        importer = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or not node.module or node.level:
                continue
            if not node.module.startswith("knot_prefect"):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{importer} imports {node.module}.{alias.name}")
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    # A name another module needs is public: renamed without the underscore, documented.
    assert private_names_imported() == []
