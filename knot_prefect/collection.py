"""Every knot block class, imported eagerly.

This module is knot's ``prefect.collections`` entry point: when Prefect loads
collections it imports this module, which defines (and so registers) every block
class whose optional dependencies are installed.
"""

from __future__ import annotations

import importlib
from typing import Any

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


_BLOCKS: dict[str, Any] = load_block_classes()
globals().update(_BLOCKS)
__all__ = ["KnotBlock", "load_block_classes", *_BLOCKS]
