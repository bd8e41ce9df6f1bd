"""Fixtures of the example tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def examples_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A working folder with its own knot home (``.knot``), shared by a module's examples.

    One home for all: the embedded MLflow store and Feast repo are created once.
    """
    folder = tmp_path_factory.mktemp("examples")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KNOT_HOME", str(folder / ".knot"))
        patch.chdir(folder)
        yield folder
