"""Deployable entrypoint of knot's training flow template: ``training.py:training_flow``.

The flow itself lives in the installed knot-prefect (``knot_prefect.flows.training``);
this file gives ``prefect deploy`` and workers a file entrypoint to load.
"""

from knot_prefect.flows.training import training_flow

__all__ = ["training_flow"]
