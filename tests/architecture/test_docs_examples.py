"""The Python examples of ``docs/`` run, against the embedded defaults.

An example that needs a team's own systems (saved block documents of production
services, a cloud account, a remote host), or that is a fragment or a signature, says
so on the line before its fence: ``<!-- not run: the reason -->``. Such an example is
still checked: it parses where it is Python, and every name it imports from
``knot_prefect`` exists.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
FENCE = re.compile(r"^```python\n(?P<code>.*?)^```", re.S | re.M)
NOT_RUN = re.compile(r"<!-- not run: (?P<reason>[^>]+?) -->\n\Z")


@dataclass(frozen=True)
class Example:
    page: str
    line: int
    code: str
    not_run: str | None

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def _examples() -> list[Example]:
    examples = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text()
        for match in FENCE.finditer(text):
            before = text[: match.start()]
            marker = NOT_RUN.search(before)
            examples.append(Example(
                page=str(page.relative_to(DOCS)),
                line=before.count("\n") + 1,
                code=match.group("code"),
                not_run=marker.group("reason") if marker else None,
            ))
    return examples


EXAMPLES = _examples()


def _knot_imports(tree: ast.AST) -> Iterator[tuple[str, str | None]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("knot_prefect"):
            for alias in node.names:
                yield str(node.module), alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("knot_prefect"):
                    yield alias.name, None


def test_the_docs_have_examples_that_run() -> None:
    assert sum(example.not_run is None for example in EXAMPLES) >= 8


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.name)
def test_docs_example(example: Example, examples_folder: Path) -> None:
    try:
        tree = ast.parse(example.code, example.name)
    except SyntaxError:
        assert example.not_run, f"{example.name} is not Python; mark it <!-- not run: ... -->"
        return
    for module, name in _knot_imports(tree):
        imported = importlib.import_module(module)
        assert name is None or hasattr(imported, name), f"{module} has no {name}"
    if example.not_run is None:
        exec(compile(tree, example.name, "exec"), {"__name__": "__docs__"})
