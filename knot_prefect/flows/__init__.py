"""knot's flow templates: compositions of knot tasks, every system a block name.

Each flow is imported on first access: ``from knot_prefect.flows import training_flow``.
"""

from __future__ import annotations

from knot_prefect._lazy import lazy_module_attributes
from knot_prefect._registry import FLOW_EXPORTS

__all__ = list(FLOW_EXPORTS)

__getattr__, __dir__ = lazy_module_attributes(__name__, FLOW_EXPORTS, globals())
