"""Generic defaults of the flow templates and ``knot serve``: ``blocks/local.yaml``'s documents.

Nothing here names a dataset: the table, keys, label, model and output table of a run
come from its parameters or its model spec (``spec=``).
"""

from __future__ import annotations

LOCAL_WAREHOUSE = "local-warehouse"
LOCAL_FEATURES = "local-features"
LOCAL_TRACKING = "local-mlflow"
DEFAULT_TRAINER = "gradient_boosting"
DEFAULT_ALIAS = "champion"
