"""Deployable entrypoint of knot's tuning flow template: ``tuning.py:tuning_flow``.

The flow itself lives in the installed knot-prefect (``knot_prefect.flows.tuning``);
this file gives ``prefect deploy`` and workers a file entrypoint to load. Deployments
pass ``train_fn`` as an import path and the search space as JSON, e.g.
``{"train_fn": "knot_prefect.demo.tuning:train_churn_trial", "trials": 16, ...}``.
"""

from knot_prefect.flows.tuning import tuning_flow

__all__ = ["tuning_flow"]
