"""The types MLflow's skops format must trust to reload a scikit-learn model."""

from __future__ import annotations

from typing import Any


def skops_trusted_types(model: Any) -> list[str] | None:
    """Types MLflow's skops format must be told to trust to reload ``model``.

    MLflow saves scikit-learn models with skops, which refuses types it cannot vouch for
    (e.g. the tree structure of forests and boosting). ``train`` logs a model that the
    team's own function just built in this process, so its types are trusted by
    construction; the list is stored with the model and applies when it is loaded.
    """
    try:
        import skops.io
    except ImportError:  # Older MLflow pickles instead and needs no list.
        return None
    return list(skops.io.get_untrusted_types(data=skops.io.dumps(model))) or None
