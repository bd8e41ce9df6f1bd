"""Private names stay private: no module imports ``_name`` from another module.

import-linter's ``private_modules`` contract covers private *modules* inside the
package; these tests cover private *names* (``from knot_prefect.x import _helper``) and
the benchmarks, which use knot as its users do: through public modules only.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import knot_prefect

PACKAGE_DIR = Path(knot_prefect.__file__).parent
BENCHMARKS_DIR = PACKAGE_DIR.parent / "benchmarks"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _knot_imports(path: Path) -> Iterator[tuple[str, str | None]]:
    """``(module, name)`` of every absolute import of knot in ``path`` (name None: ``import``)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.split(".")[0] == "knot_prefect":
                for alias in node.names:
                    yield node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "knot_prefect":
                    yield alias.name, None


def private_names_imported() -> list[str]:
    """Every ``from knot_prefect.X import _name`` in knot's own modules."""
    return [
        f"{_module_name(path)} imports {module}.{name}"
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        for module, name in _knot_imports(path)
        if name is not None and _is_private(name)
    ]


def private_imports_of_benchmarks() -> list[str]:
    """Every import of a private knot module or name in ``benchmarks/``."""
    found = []
    for path in sorted(BENCHMARKS_DIR.glob("*.py")):
        for module, name in _knot_imports(path):
            dotted = module if name is None else f"{module}.{name}"
            if any(_is_private(part) for part in dotted.split(".")):
                found.append(f"benchmarks/{path.name} imports {dotted}")
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    # A name another module needs is public: renamed without the underscore, documented.
    assert private_names_imported() == []


def test_benchmarks_import_public_modules_and_names_only() -> None:
    # A benchmark measures what users call; what it needs is part of the public API.
    assert private_imports_of_benchmarks() == []
