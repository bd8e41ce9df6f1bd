"""Every ``>>>`` example in a docstring of ``knot_prefect`` runs, against the embedded defaults.

The examples run in the suite's Prefect test harness (a temporary database) with the
knot home in a temporary folder, so none starts a server of its own or touches the
working directory.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import knot_prefect

# Modules whose import needs an optional library that an environment may lack; their
# examples run wherever the library is installed.
OPTIONAL_IMPORTS = ("feast", "mlflow", "pandera", "dask", "snowflake", "google", "torch")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names() -> Iterator[str]:
    for info in pkgutil.walk_packages(knot_prefect.__path__, "knot_prefect."):
        # The demo's Feast repo is a folder of definitions Feast imports, not a package.
        if ".feature_repo" not in info.name:
            yield info.name


def _examples() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests: list[doctest.DocTest] = []
    for name in _module_names():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] in OPTIONAL_IMPORTS:
                continue
            raise
        tests.extend(test for test in finder.find(module, name) if test.examples)
    # A task made with task(...)(function) shares its function's docstring: run it once.
    unique = {(test.filename, test.docstring): test for test in sorted(tests, key=_by_name)}
    return sorted(unique.values(), key=_by_name)


def _by_name(test: doctest.DocTest) -> str:
    return test.name


EXAMPLES = _examples()


def test_examples_are_found() -> None:
    modules = {test.name.rsplit(".", 1)[0] for test in EXAMPLES}
    assert len(EXAMPLES) > 100 and len(modules) > 50


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda test: test.name)
def test_docstring_example_runs(example: doctest.DocTest, examples_folder: Path) -> None:
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(example, out=report.append, clear_globs=True)
    assert runner.failures == 0, "".join(report)
