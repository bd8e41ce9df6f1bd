"""Deployable entrypoint of knot's feature materialization flow template.

Entrypoint ``feature_materialization.py:feature_materialization_flow``; the flow
itself lives in the installed knot-prefect (``knot_prefect.flows.feature_materialization``).
"""

from knot_prefect.flows.feature_materialization import feature_materialization_flow

__all__ = ["feature_materialization_flow"]
