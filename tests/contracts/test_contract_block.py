"""The DataContract block: YAML and model sources, versions, and readable YAML errors."""

from __future__ import annotations

import pandera.pandas as pa
import pytest

from knot_prefect.blocks.contract import DataContract
from knot_prefect.contracts.errors import ContractDefinitionError
from tests.contracts.conftest import ORDERS_YAML


def test_yaml_written_by_pandera_round_trips() -> None:
    schema = pa.DataFrameSchema(
        {"id": pa.Column(int, pa.Check.ge(0), unique=True), "name": pa.Column(str, nullable=True)},
        name="people",
    )
    contract = DataContract(schema_yaml=schema.to_yaml())
    assert contract.schema() == schema
    assert contract.contract_name == "people"


def test_version_follows_the_schema_not_the_text() -> None:
    base = DataContract(schema_yaml=ORDERS_YAML)
    reformatted = DataContract(schema_yaml="# reviewed\n" + ORDERS_YAML.replace("\n", "\n\n"))
    changed = DataContract(
        schema_yaml=ORDERS_YAML.replace(
            "greater_than_or_equal_to: 0", "greater_than_or_equal_to: 1"
        )
    )
    labelled = DataContract(schema_yaml=ORDERS_YAML, version_label="2024-06")
    assert base.version == reformatted.version
    assert base.version != changed.version
    assert labelled.version == f"2024-06+{base.version}"


def test_model_reference() -> None:
    contract = DataContract(model="tests.contracts.models:Orders")
    assert list(contract.schema().columns) == ["order_id", "amount"]
    assert contract.contract_name == "orders"
    assert len(contract.version) == 12


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("tests.contracts.nowhere:Orders", "cannot be imported"),
        ("tests.contracts.models:Missing", "cannot be imported"),
        ("tests.contracts.models:NOT_A_MODEL", "not a pandera DataFrameModel"),
    ],
)
def test_bad_model_reference(reference: str, expected: str) -> None:
    with pytest.raises(ContractDefinitionError, match=expected):
        DataContract(model=reference).schema()


def test_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        DataContract()
    with pytest.raises(ValueError, match="exactly one of"):
        DataContract(schema_yaml=ORDERS_YAML, model="tests.contracts.models:Orders")
    with pytest.raises(ValueError, match="module:Class"):
        DataContract(model="not a reference")


BAD_YAML = [
    # (yaml, line, fragment of the message)
    ("columns:\n  a:\n    dtype: int64\n  b: [\n", 5, "cannot be parsed"),
    ("columns:\n  a:\n    dtype: int64\n  b:\n    dtype: integr\n", 5, "columns.b.dtype"),
    ("columns:\n  a:\n    dtype: int64\n    greater_than_or_equl: 0\n", 4, "greater_than_or_equl"),
    ("colums:\n  a:\n    dtype: int64\n", 1, "unknown schema key 'colums'"),
    (
        "columns:\n  a:\n    dtype: int64\n    checks:\n    - value: 1\n"
        "      options:\n        check_name: not_a_check\n",
        5,
        "columns.a.checks[0]",
    ),
    (
        "columns:\n  a:\n    dtype: int64\n    checks:\n      ge: 0\n      less_than_or_equl: 9\n",
        6,
        "columns.a.checks.less_than_or_equl",
    ),
    ("- just\n- a list\n", 1, "must be a mapping"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), BAD_YAML)
def test_bad_yaml_is_refused_naming_the_field_and_the_line(
    text: str, line: int, fragment: str
) -> None:
    # Refused when the block is made (and so when it is saved or loaded), not mid-flow.
    with pytest.raises(ValueError, match="schema_yaml") as info:
        DataContract(schema_yaml=text)
    message = str(info.value)
    assert f"line {line}" in message
    assert fragment in message


def test_saved_and_loaded(contract_name: str) -> None:
    DataContract(schema_yaml=ORDERS_YAML, sensitive_columns=["email"], version_label="v1").save(
        contract_name
    )
    loaded = DataContract.load(contract_name)
    assert loaded.contract_name == contract_name
    assert loaded.sensitive_columns == ["email"]
    assert loaded.version.startswith("v1+")
    assert loaded.check_connection() == f"4 columns, version {loaded.version}"
