"""The churn demo world with a trained champion, shared by the Dask scoring tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

CUSTOMERS = 300
DAYS = 12
MODEL = "churn-dask"


@pytest.fixture(scope="package")
def scoring_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """KNOT_HOME with the demo's blocks, tables and Feast repo, and a promoted model.

    Built once for the whole folder (training takes most of its time).
    """
    from knot_prefect.demo.data import DATASET_END
    from knot_prefect.demo.params import training_parameters
    from knot_prefect.demo.seed import prepare_demo
    from knot_prefect.flows import training_flow
    from knot_prefect.tasks import feast_apply, materialize

    home: Path = tmp_path_factory.mktemp("knot-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KNOT_HOME", str(home))
        outcome = prepare_demo(customers=CUSTOMERS, days=DAYS, seed=5)
        feast_apply.fn("local-features")
        materialize.fn("local-features", end=DATASET_END + timedelta(seconds=1))
        trained = training_flow(**training_parameters(model_name=MODEL))
        yield {"home": home, "as_of": DATASET_END, "trained": trained, **outcome}
