"""Cache keys that let a retried flow run skip the expensive steps it already finished.

Keys combine the flow run, the step, a fingerprint of the input *data* (not only the
code) and the parameters, so a retry of the same run reuses a finished step, while new
data, new parameters or a new run computes it afresh.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from knot_prefect.flows._support import frame_fingerprint


def step_cache_key(step: str, data: Any, settings: dict[str, Any]) -> str:
    """The cache key of one step of the current flow run.

    Args:
        step: The step's name (e.g. ``"train"``).
        data: The step's input frame; its content is fingerprinted.
        settings: Everything else that decides the step's result (parameters, code paths).

    Examples:
        >>> import pandas as pd
        >>> a = step_cache_key("train", pd.DataFrame({"x": [1]}), {"lr": 0.1})
        >>> a == step_cache_key("train", pd.DataFrame({"x": [1]}), {"lr": 0.1})
        True
        >>> a == step_cache_key("train", pd.DataFrame({"x": [2]}), {"lr": 0.1})
        False
    """
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run_id = str(context.flow_run.id) if context and context.flow_run else "no-flow-run"
    digest = hashlib.sha256()
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    digest.update(frame_fingerprint(data).encode())
    return f"knot-{step}-{run_id}-{digest.hexdigest()[:32]}"
