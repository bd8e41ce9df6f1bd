"""Point MLflow's fluent API (``mlflow.log_metric``, autologging) at a block's store.

MLflow keeps one tracking URI per process. Runs opened through knot push their store on
a stack; the newest store is the active one and the caller's own setting comes back when
the last run closes, so concurrent task threads logging to the same store do not pull
the URI from under each other.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking

_lock = threading.Lock()
_stack: list[tuple[object, str, str]] = []
_saved: tuple[str | None, str | None] = (None, None)
_saved_environment: dict[str, str | None] = {}
_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextlib.contextmanager
def fluent_store(tracking: MLflowTracking) -> Iterator[None]:
    """Make ``tracking``'s store MLflow's process-wide default inside the block.

    Examples:
        >>> import mlflow
        >>> from knot_prefect.blocks.mlflow_tracking import MLflowTracking
        >>> tracking = MLflowTracking()
        >>> with fluent_store(tracking):
        ...     mlflow.get_tracking_uri() == tracking.resolved_tracking_uri()
        True
    """
    global _saved, _saved_environment
    handle = object()
    with _lock:
        if not _stack:
            _saved = _current()
            _saved_environment = {name: os.environ.get(name) for name in _VARIABLES}
        _stack.append((handle, tracking.resolved_tracking_uri(), tracking.resolved_registry_uri()))
        _apply()
    try:
        yield
    finally:
        with _lock:
            _stack[:] = [entry for entry in _stack if entry[0] is not handle]
            _apply()


def _current() -> tuple[str | None, str | None]:
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    # The explicitly set values (None when unset), not the resolved defaults.
    return tracking_utils._tracking_uri, registry_utils._registry_uri


def _apply() -> None:
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils

    if _stack:
        if _current() != (_stack[-1][1], _stack[-1][2]):
            mlflow.set_tracking_uri(_stack[-1][1])
            mlflow.set_registry_uri(_stack[-1][2])
        return
    # Restore exactly what the caller had: the module globals and the variables
    # (MLflow's setters also write the variables for subprocesses).
    mlflow.set_tracking_uri(_saved[0])  # type: ignore[arg-type]
    registry_utils._registry_uri = _saved[1]  # type: ignore[assignment]
    for name, value in _saved_environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
