"""Every knot block class, imported eagerly.

This module is knot's ``prefect.collections`` entry point: when Prefect loads
collections it imports this module, which defines (and so registers) every block
class whose optional dependencies are installed.
"""

from __future__ import annotations

from typing import Any

from knot_prefect.blocks.base import KnotBlock
from knot_prefect.blocks.registry import load_block_classes

_BLOCKS: dict[str, Any] = load_block_classes()
globals().update(_BLOCKS)
__all__ = ["KnotBlock", "load_block_classes", *_BLOCKS]
