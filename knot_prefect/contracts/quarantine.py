"""Write failing rows to a quarantine table through the ``Warehouse`` interface.

A quarantined row keeps every column of the input and gains the checks and columns
it failed, the contract, its version, the flow run and when it was quarantined. The
table's schema is compared with the rows before anything is written, so an
incompatible table is reported, not half-filled.

Each row also gets a key made of a fingerprint of the batch (contract, version, flow
run and the failing rows' content) and its position: writing the same batch again —
a retried task or flow run — upserts on that key instead of duplicating rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import TYPE_CHECKING

import pandas as pd

from knot_prefect.blocks.warehouses.type_families import type_family
from knot_prefect.contracts.engine import FAILED_CHECKS, FAILED_COLUMNS
from knot_prefect.contracts.errors import QuarantineError

if TYPE_CHECKING:
    import pyarrow as pa

    from knot_prefect.blocks.warehouses.base import Warehouse, WriteResult

CONTRACT = "knot_contract"
CONTRACT_VERSION = "knot_contract_version"
FLOW_RUN_ID = "knot_flow_run_id"
QUARANTINED_AT = "knot_quarantined_at"
QUARANTINE_KEY = "knot_quarantine_key"
QUARANTINE_COLUMNS = (
    FAILED_CHECKS,
    FAILED_COLUMNS,
    CONTRACT,
    CONTRACT_VERSION,
    FLOW_RUN_ID,
    QUARANTINED_AT,
    QUARANTINE_KEY,
)


def batch_fingerprint(
    bad_rows: pd.DataFrame, contract: str, version: str, flow_run_id: str | None
) -> str:
    """16 hex characters identifying a batch of failing rows of one validation."""
    digest = hashlib.sha256(f"{contract}|{version}|{flow_run_id}|".encode())
    try:
        row_hashes = pd.util.hash_pandas_object(bad_rows, index=False).to_numpy()
    except TypeError:  # unhashable cells (lists, dicts): no deduplication possible
        digest.update(uuid.uuid4().bytes)
    else:
        digest.update(row_hashes.tobytes())
    return digest.hexdigest()[:16]


def quarantine_frame(
    bad_rows: pd.DataFrame, contract: str, version: str, flow_run_id: str | None
) -> pd.DataFrame:
    """The rows to write: failing rows plus where they came from.

    Args:
        bad_rows: Failing rows with :data:`FAILED_CHECKS` and :data:`FAILED_COLUMNS`.
        contract: The contract's name.
        version: The contract's version.
        flow_run_id: The flow run that validated (None outside a run).

    Returns:
        The frame to append to the quarantine table.
    """
    batch = batch_fingerprint(bad_rows, contract, version, flow_run_id)
    return bad_rows.assign(
        **{  # type: ignore[arg-type]
            QUARANTINE_KEY: [f"{batch}-{i}" for i in range(len(bad_rows))],
            CONTRACT: contract,
            CONTRACT_VERSION: version,
            FLOW_RUN_ID: pd.Series(flow_run_id, index=bad_rows.index, dtype="string"),
            QUARANTINED_AT: pd.Timestamp(dt.datetime.now(dt.UTC)),
        }
    )


def _kind(data_type: pa.DataType) -> str:
    # Nested and other types without a family must match exactly.
    family = type_family(data_type)
    return str(data_type) if family == "other" else family


# Which kinds of data a column of a given kind accepts (besides its own and nulls).
_WIDENS_TO = {"integer": {"float", "decimal"}, "float": {"decimal"}, "boolean": {"integer"}}


def incompatibilities(table: pa.Schema, rows: pa.Schema) -> list[str]:
    """What stops ``rows`` from being appended to a table with schema ``table``.

    Args:
        table: The existing table's schema.
        rows: The rows' schema.

    Returns:
        One message per problem; empty when the rows fit.
    """
    problems = []
    table_types = {field.name.lower(): field.type for field in table}
    row_names = {field.name.lower() for field in rows}
    missing = [field.name for field in rows if field.name.lower() not in table_types]
    if missing:
        problems.append(f"the table has no column(s) {', '.join(map(repr, missing))}")
    extra = [field.name for field in table if field.name.lower() not in row_names]
    if extra:
        problems.append(f"the rows have no column(s) {', '.join(map(repr, extra))}")
    for field in rows:
        table_type = table_types.get(field.name.lower())
        if table_type is None:
            continue
        row_kind, table_kind = _kind(field.type), _kind(table_type)
        if row_kind in {"null", table_kind} or table_kind in _WIDENS_TO.get(row_kind, set()):
            continue
        problems.append(
            f"column {field.name!r} is {table_type} in the table but {field.type} in the rows"
        )
    return problems


def existing_schema(warehouse: Warehouse, table: str) -> pa.Schema | None:
    """The schema of ``table`` if it exists (read with a query that returns no rows)."""
    from knot_prefect.blocks.warehouses.identifiers import TableName

    if not warehouse.table_exists(table):
        return None
    quoted = TableName.parse(table).quoted()
    return warehouse.read_arrow(f"SELECT * FROM {quoted} WHERE 1 = 0").schema


def write_quarantine(
    warehouse: Warehouse, table: str, rows: pd.DataFrame, contract: str
) -> WriteResult:
    """Add quarantined rows, after checking that the table can take them.

    A new table is created by an append; an existing one is upserted on
    :data:`QUARANTINE_KEY`, so writing the same batch twice keeps one copy.

    Args:
        warehouse: Where the quarantine table lives.
        table: ``"table"`` or ``"schema.table"``.
        rows: The frame from :func:`quarantine_frame`.
        contract: The contract's name, for messages.

    Returns:
        What was written.

    Raises:
        QuarantineError: When the table's schema does not fit the rows (nothing is
            written) or the write failed (the warehouse leaves the table as it was).
    """
    from knot_prefect.blocks.warehouses.base import to_arrow

    arrow = to_arrow(rows)
    try:
        schema = existing_schema(warehouse, table)
    except Exception as exc:
        raise QuarantineError(
            f"Cannot read the schema of quarantine table {table!r} for contract "
            f"{contract!r}: {exc}. Nothing was written."
        ) from exc
    if schema is not None:
        problems = incompatibilities(schema, arrow.schema)
        if problems:
            raise QuarantineError(
                f"Quarantine table {table!r} cannot take the failing rows of contract "
                f"{contract!r}: {'; '.join(problems)}. Nothing was written; use a new "
                "quarantine table (one per contract) or migrate this one."
            )
    try:
        if schema is None:
            return warehouse.write(arrow, table, mode="append")
        return warehouse.write(arrow, table, mode="upsert", keys=[QUARANTINE_KEY])
    except Exception as exc:
        raise QuarantineError(
            f"Writing {len(rows)} failing rows of contract {contract!r} to quarantine "
            f"table {table!r} failed: {exc}. The warehouse left the table unchanged."
        ) from exc
