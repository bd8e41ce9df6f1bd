"""A small churn world on embedded defaults, built once per module of flow tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

CUSTOMERS = 400
DAYS = 20


@pytest.fixture(scope="module")
def demo_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """KNOT_HOME with the demo's block documents, warehouse tables and Feast repo."""
    from knot_prefect.demo.data import DATASET_END
    from knot_prefect.demo.seed import prepare_demo
    from knot_prefect.tasks import feast_apply, materialize

    home: Path = tmp_path_factory.mktemp("knot-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KNOT_HOME", str(home))
        outcome = prepare_demo(customers=CUSTOMERS, days=DAYS, seed=11)
        feast_apply.fn("local-features")
        materialize.fn("local-features", end=DATASET_END + timedelta(seconds=1))
        yield {"home": home, "as_of": DATASET_END, **outcome}
