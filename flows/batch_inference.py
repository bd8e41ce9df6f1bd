"""Deployable entrypoint of knot's batch inference flow template.

Entrypoint ``batch_inference.py:batch_inference_flow``; the flow itself lives in the installed
knot-prefect (``knot_prefect.flows.batch_inference``).
"""

from knot_prefect.flows.batch_inference import batch_inference_flow

__all__ = ["batch_inference_flow"]
