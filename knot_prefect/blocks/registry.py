"""Every knot block class whose optional dependencies are installed, by class name."""

from __future__ import annotations

import importlib

from knot_prefect._registry import BLOCK_MODULES
from knot_prefect.blocks.base import KnotBlock


def load_block_classes() -> dict[str, type[KnotBlock]]:
    """Import every knot block class whose optional dependencies are installed.

    Returns:
        Block classes by class name, in registry order.
    """
    classes: dict[str, type[KnotBlock]] = {}
    for name, module_path in BLOCK_MODULES.items():
        try:
            module = importlib.import_module(module_path)
        except ModuleNotFoundError as exc:
            # A missing optional extra (e.g. knot-prefect[snowflake]) hides only that
            # block; a missing knot module is a real error.
            if exc.name and exc.name.startswith("knot_prefect"):
                raise
            continue
        classes[name] = getattr(module, name)
    return classes
