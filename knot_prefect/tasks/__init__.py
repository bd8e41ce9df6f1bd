"""knot's Prefect tasks: ``from knot_prefect.tasks import extract, validate, train``.

Each task lives in the module of its concept and is imported on first access, so
importing one task never pulls in another task's libraries. Each is a thin Prefect task
over a plain function exported beside it (``extract`` over ``extract_frame``, ``train``
over ``train_model``...), which code outside a Prefect run calls directly.
"""

from __future__ import annotations

from knot_prefect._lazy import lazy_module_attributes
from knot_prefect._registry import TASK_EXPORTS

__all__ = list(TASK_EXPORTS)

__getattr__, __dir__ = lazy_module_attributes(__name__, TASK_EXPORTS, globals())
