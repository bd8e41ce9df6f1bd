"""Deployable entrypoint of knot's data quality flow template.

Entrypoint ``data_quality.py:data_quality_flow``; the flow itself lives in the installed
knot-prefect (``knot_prefect.flows.data_quality``).
"""

from knot_prefect.flows.data_quality import data_quality_flow

__all__ = ["data_quality_flow"]
