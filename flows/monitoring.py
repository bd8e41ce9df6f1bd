"""Deployable entrypoint of knot's monitoring flow template: ``monitoring.py:monitoring_flow``.

The flow itself lives in the installed knot-prefect (``knot_prefect.flows.monitoring``);
this file gives ``prefect deploy`` and workers a file entrypoint to load.
"""

from knot_prefect.flows.monitoring import monitoring_flow

__all__ = ["monitoring_flow"]
