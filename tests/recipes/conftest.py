"""Load a recipe's modules from its folder, as its own project would import them."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def load_recipe(name: str, *modules: str) -> dict[str, ModuleType]:
    """Import top-level modules of a recipe (``pipeline``, ``generate_data``, ...).

    Recipes share module names, so the modules are imported with the recipe's folder
    first on ``sys.path`` and then removed from ``sys.modules``: each test holds its
    recipe's own objects.
    """
    folder = RECIPES / name
    names = modules or ("generate_data", "pipeline")
    for module in names:
        sys.modules.pop(module, None)
    sys.path.insert(0, str(folder))
    try:
        return {module: importlib.import_module(module) for module in names}
    finally:
        sys.path.remove(str(folder))
        for module in names:
            sys.modules.pop(module, None)


@pytest.fixture
def google_adc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Application default credentials that load offline, as prefect-gcp's workers need.

    Nothing contacts Google: there is no emulator for BigQuery or Vertex AI jobs.
    """
    path = tmp_path / "adc.json"
    path.write_text(json.dumps({
        "type": "authorized_user", "client_id": "knot-tests.apps.googleusercontent.com",
        "client_secret": "unused", "refresh_token": "unused",
    }))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "knot-tests")
    return path
