"""validate on polars and Dask frames: same policies, one report, nothing lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
import polars as pl
import pytest
from prefect import flow

from knot_prefect.contracts.errors import ContractValidationError
from knot_prefect.contracts.tasks import validate, validate_frame
from tests.contracts.conftest import make_orders


def test_polars_raise_and_quarantine(contract: Any, warehouse: Any) -> None:
    clean = pl.from_pandas(make_orders(100))
    assert validate.fn(clean, contract).equals(clean)

    dirty = pl.from_pandas(make_orders(100, bad_every=4))
    with pytest.raises(ContractValidationError, match="on column 'amount': 25 failure"):
        validate.fn(dirty, contract)

    valid = validate.fn(
        dirty,
        contract,
        on_failure="quarantine",
        max_bad_fraction=0.5,
        quarantine=(warehouse, "q_polars"),
    )
    assert isinstance(valid, pl.DataFrame)
    assert valid.schema == dirty.schema
    stored = warehouse.read("select * from q_polars")
    assert valid.height + len(stored) == dirty.height
    assert set(valid["order_id"].to_list()) | set(stored["order_id"]) == set(range(100))
    assert (stored["amount"] < 0).all()


@pytest.fixture(scope="module")
def dask_client(dask_scheduler: str) -> Iterator[Any]:
    from distributed import Client

    with Client(dask_scheduler) as client:
        yield client


def test_dask_partition_wise_one_report(
    contract: Any, warehouse: Any, dask_client: Any, artifacts: Any
) -> None:
    import dask.dataframe as dd

    frame = make_orders(2_000, bad_every=40)  # 50 bad rows spread over partitions
    ddf = dd.from_pandas(frame, npartitions=4)

    @flow
    def dask_quarantine() -> pd.DataFrame:
        valid = validate(
            ddf,
            contract,
            on_failure="quarantine",
            max_bad_fraction=0.1,
            quarantine=(warehouse, "q_dask"),
        )
        assert isinstance(valid, dd.DataFrame)
        return valid.compute()

    valid = dask_quarantine()
    stored = warehouse.read("select * from q_dask")
    assert len(stored) == 50
    assert len(valid) + len(stored) == len(frame)
    assert set(valid["order_id"]) | set(stored["order_id"]) == set(frame["order_id"])
    [artifact] = artifacts(f"contract-{contract.contract_name}")
    rows = {row["check"]: row for row in json.loads(artifact.data)}
    assert rows["greater_than_or_equal_to(0)"]["failures"] == 50
    assert rows["greater_than_or_equal_to(0)"]["status"] == "quarantined"


def test_dask_raise_and_warn(contract: Any, dask_client: Any) -> None:
    import dask.dataframe as dd

    ddf = dd.from_pandas(make_orders(400, bad_every=100), npartitions=3)
    with pytest.raises(ContractValidationError, match="4 failure"):
        validate.fn(ddf, contract)
    out, report = validate_frame(ddf, contract, on_failure="warn")
    assert report.total_rows == 400 and report.bad_rows == 4
    assert len(out.compute()) == 400
