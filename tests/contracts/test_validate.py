"""The validate task on pandas frames: policies, quarantine in DuckDB, artifacts, events."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from prefect import flow

from knot_prefect.contracts.errors import ContractValidationError, QuarantineError
from knot_prefect.contracts.tasks import validate, validate_frame
from tests.contracts.conftest import make_orders


def test_clean_data_passes_and_is_returned(contract: Any, artifacts: Any, events: Any) -> None:
    frame = make_orders(200)

    @flow
    def check_orders() -> pd.DataFrame:
        return validate(frame, contract)

    result = check_orders()
    pd.testing.assert_frame_equal(result, frame)
    key = f"contract-{contract.contract_name}"
    [artifact] = artifacts(key)
    rows = json.loads(artifact.data)
    assert {row["status"] for row in rows} == {"passed"}
    assert {"greater_than_or_equal_to(0)", "not_nullable", "field_uniqueness"} <= {
        row["check"] for row in rows
    }
    [event] = events(f"knot.contract.{contract.contract_name}")
    assert event.event == "knot.contract.passed"
    assert event.payload["total_rows"] == 200
    assert event.payload["bad_rows"] == 0
    assert event.resource["knot.contract.version"] == contract.version


def test_raise_lists_each_failed_check_column_and_count(contract: Any) -> None:
    frame = make_orders(100, bad_every=10)  # 10 negative amounts
    frame.loc[3, "status"] = "lost"
    frame.loc[[5, 6], "email"] = None
    with pytest.raises(ContractValidationError) as info:
        validate.fn(frame, contract, on_failure="raise")
    message = str(info.value)
    assert "failed 3 check(s) on 13 of 100 rows" in message
    assert "check greater_than_or_equal_to(0) on column 'amount': 10 failure(s)" in message
    assert "check isin(['open', 'paid']) on column 'status': 1 failure(s); e.g. lost" in message
    assert "check not_nullable on column 'email': 2 failure(s)" in message
    report = info.value.report
    assert report.bad_rows == 13
    assert report.sample and {row["email"] for row in report.sample} == {"***"}
    assert "@example.com" not in message
    assert [(c.column, c.failures) for c in report.failed_checks] == [
        ("amount", 10),
        ("status", 1),
        ("email", 2),
    ]


def test_missing_column_is_a_report_not_a_key_error(contract: Any) -> None:
    frame = make_orders(20).drop(columns=["amount"])
    with pytest.raises(ContractValidationError) as info:
        validate.fn(frame, contract)
    assert "column 'amount' is missing" in str(info.value)
    assert info.value.report.bad_rows == 20


def test_warn_returns_every_row_and_reports(contract: Any, artifacts: Any, events: Any) -> None:
    frame = make_orders(50, bad_every=5)

    @flow
    def warned() -> pd.DataFrame:
        return validate(frame, contract, on_failure="warn")

    result = warned()
    assert len(result) == 50
    [artifact] = artifacts(f"contract-{contract.contract_name}")
    statuses = {row["check"]: row["status"] for row in json.loads(artifact.data)}
    assert statuses["greater_than_or_equal_to(0)"] == "warning"
    assert statuses["not_nullable"] == "passed"
    [event] = events(f"knot.contract.{contract.contract_name}")
    assert event.event == "knot.contract.failed"
    assert event.payload["bad_rows"] == 10
    assert event.payload["failures"] == {"greater_than_or_equal_to(0)@amount": 10}


def test_sensitive_columns_are_masked_in_artifacts(contract: Any, artifacts: Any) -> None:
    frame = make_orders(30, bad_every=3)
    frame.loc[1, "email"] = None  # a failing value of the sensitive column itself
    frame.loc[2, "email"] = "secret-value@example.com"
    frame.loc[2, "amount"] = -5.0

    @flow
    def masked() -> None:
        validate(frame, contract, on_failure="warn")

    masked()
    [artifact] = artifacts(f"contract-{contract.contract_name}")
    published = artifact.data + (artifact.description or "")
    assert "Sample of failing rows" in published
    assert "***" in published
    assert "@example.com" not in published
    assert "-5.0" in published  # non-sensitive values are shown


def test_quarantine_keeps_every_row(contract: Any, warehouse: Any) -> None:
    frame = make_orders(1_000, bad_every=50)  # 20 bad rows
    frame.loc[7, "status"] = "lost"
    frame.loc[frame.index[::50][:3], "status"] = "lost"  # bad twice over

    @flow
    def quarantined() -> tuple[pd.DataFrame, str]:
        from prefect.runtime import flow_run

        valid = validate(
            frame,
            contract,
            on_failure="quarantine",
            max_bad_fraction=0.05,
            quarantine=(warehouse, "quarantine.orders"),
        )
        return valid, flow_run.id

    valid, run_id = quarantined()
    stored = warehouse.read("select * from quarantine.orders")
    assert len(valid) + len(stored) == len(frame)
    assert set(valid["order_id"]) | set(stored["order_id"]) == set(frame["order_id"])
    assert set(valid["order_id"]).isdisjoint(stored["order_id"])
    assert len(stored) == 21
    assert (valid["amount"] >= 0).all()
    row = stored.set_index("order_id").loc[0]
    assert (
        row["knot_failed_checks"]
        == "greater_than_or_equal_to(0) [amount]; isin(['open', 'paid']) [status]"
    )
    assert row["knot_failed_columns"] == "amount, status"
    assert row["knot_contract"] == contract.contract_name
    assert row["knot_contract_version"] == contract.version
    assert set(stored["knot_flow_run_id"]) == {str(run_id)}
    assert stored.set_index("order_id").loc[7, "knot_failed_columns"] == "status"


def test_quarantine_fails_above_max_bad_fraction_after_writing(
    contract: Any, warehouse: Any
) -> None:
    frame = make_orders(100, bad_every=10)
    with pytest.raises(ContractValidationError, match=r"exceeds max_bad_fraction=5\.00%"):
        validate.fn(
            frame,
            contract,
            on_failure="quarantine",
            max_bad_fraction=0.05,
            quarantine=(warehouse, "q_orders"),
        )
    assert warehouse.read("select count(*) as n from q_orders")["n"][0] == 10


def test_quarantine_again_after_a_retry_keeps_one_copy(contract: Any, warehouse: Any) -> None:
    frame = make_orders(100, bad_every=10)
    first = make_orders(100, bad_every=25)  # a different batch, kept alongside

    @flow(retries=1)
    def flaky() -> int:
        from prefect.runtime import flow_run

        validate(
            frame,
            contract,
            on_failure="quarantine",
            max_bad_fraction=0.5,
            quarantine=(warehouse, "q_retry"),
        )
        if flow_run.run_count == 1:
            raise RuntimeError("a later step failed; the flow run is retried")
        return len(warehouse.read("select * from q_retry"))

    validate.fn(
        first,
        contract,
        on_failure="quarantine",
        max_bad_fraction=0.5,
        quarantine=(warehouse, "q_retry"),
    )
    assert flaky() == 4 + 10
    stored = warehouse.read("select * from q_retry")
    assert stored["knot_quarantine_key"].is_unique


def test_quarantine_of_a_missing_column_takes_every_row(contract: Any, warehouse: Any) -> None:
    frame = make_orders(40).drop(columns=["status"])
    with pytest.raises(ContractValidationError):
        validate.fn(frame, contract, on_failure="quarantine", quarantine=(warehouse, "q_missing"))
    stored = warehouse.read("select * from q_missing")
    assert len(stored) == 40
    assert set(stored["knot_failed_checks"]) == {"column_in_dataframe [status]"}


def test_incompatible_quarantine_table_is_refused_before_any_write(
    contract: Any, warehouse: Any
) -> None:
    warehouse.execute("create table q_old (order_id varchar, note varchar)")
    warehouse.execute("insert into q_old values ('x', 'kept')")
    frame = make_orders(100, bad_every=10)
    with pytest.raises(QuarantineError) as info:
        validate.fn(
            frame,
            contract,
            on_failure="quarantine",
            max_bad_fraction=1.0,
            quarantine=(warehouse, "q_old"),
        )
    message = str(info.value)
    assert "Quarantine table 'q_old'" in message
    assert "'amount'" in message and "'note'" in message and "Nothing was written" in message
    assert warehouse.read("select * from q_old").to_dict("records") == [
        {"order_id": "x", "note": "kept"}
    ]


def test_quarantine_by_warehouse_document_name(contract: Any, warehouse: Any) -> None:
    warehouse.save("contracts-test-warehouse", overwrite=True)
    valid = validate.fn(
        make_orders(20, bad_every=10),
        contract,
        on_failure="quarantine",
        max_bad_fraction=0.5,
        quarantine=("contracts-test-warehouse", "q_named"),
    )
    assert len(valid) == 18
    assert len(warehouse.read("select * from q_named")) == 2


def test_non_unique_index_and_contract_by_name(contract: Any) -> None:
    frame = make_orders(10, bad_every=5)
    frame.index = [0] * 10
    out, report = validate_frame(frame, contract.contract_name, on_failure="warn")
    assert report.bad_rows == 2
    assert list(out.index) == [0] * 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_failure": "drop"}, "Unknown on_failure='drop'"),
        ({"on_failure": "quarantine"}, "needs quarantine=\\(warehouse, 'table'\\)"),
        ({"max_bad_fraction": 2.0}, "between 0.0 and 1.0"),
    ],
)
def test_bad_arguments(contract: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate.fn(make_orders(3), contract, **kwargs)
