"""``data_quality_flow``: validate a table against its contract, on a schedule."""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow

from knot_prefect.documents.defaults import LOCAL_WAREHOUSE


@flow(name="knot-data-quality", log_prints=True)
def data_quality_flow(
    table_or_sql: str | None = None,
    contract: str | None = None,
    spec: str | None = None,
    warehouse: str | None = None,
    params: dict[str, Any] | None = None,
    on_failure: Literal["raise", "warn", "quarantine"] = "warn",
    quarantine_table: str | None = None,
    max_bad_fraction: float = 0.0,
    checks: list[dict[str, Any]] | None = None,
) -> Any:
    """Validate a table (or a query's result) and run metric checks on it.

    Deploy it with a schedule to watch a table: every run leaves the contract's keyed
    artifact (its history is the table's quality over time) and an event that
    automations can act on.

    Args:
        table_or_sql: A table name, or a query (required; the spec's ``source``).
        contract: DataContract block document (required; the spec's ``contract``).
        spec: ModelSpec block document name, or the path of a model spec YAML file.
        warehouse: Warehouse block document (default ``local-warehouse``).
        params: Values bound to ``:name`` placeholders of a query.
        on_failure: ``warn`` (default: report, finish with warnings), ``raise`` or
            ``quarantine``.
        quarantine_table: Where failing rows go under ``quarantine``.
        max_bad_fraction: Largest tolerated share of failing rows under ``quarantine``.
        checks: Metric checks: ``{"metric": "row_count" | "null_fraction" | "min" |
            "max" | "mean" | "std" | "freshness", "column": ..., "lower"/"upper"/"equal",
            "severity"}``.

    Returns:
        Rows read, rows valid and the check results (a "completed with warnings" state
        when anything warned).

    Examples:
        ```python
        from knot_prefect.flows import data_quality_flow

        data_quality_flow("customers", contract="customers-contract")
        ```
    """
    from knot_prefect.blocks.contract import DataContract
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.checks import metrics
    from knot_prefect.flows._parameters import settle
    from knot_prefect.flows._support import publish_summary
    from knot_prefect.tasks import check, extract, finish_with_warnings, validate

    given = settle("data_quality_flow", spec)
    table_or_sql = given.required(table_or_sql, "table_or_sql", "source",
                                  "the table or query to validate")
    contract = given.required(contract, "contract", "contract",
                              "the DataContract block document")
    warehouse_block = resolve_block(given.or_default(warehouse, "warehouse", LOCAL_WAREHOUSE),
                                    Warehouse, parameter="warehouse")
    contract_block = resolve_block(contract, DataContract, parameter="contract")
    frame = extract(warehouse_block, table_or_sql, params)
    quarantine = (warehouse_block, quarantine_table) if quarantine_table else None
    valid = validate(frame, contract_block, on_failure=on_failure,
                     max_bad_fraction=max_bad_fraction, quarantine=quarantine)

    compute = {
        "row_count": lambda column: metrics.row_count(frame),
        "null_fraction": lambda column: metrics.null_fraction(frame, column),
        "min": lambda column: metrics.column_min(frame, column),
        "max": lambda column: metrics.column_max(frame, column),
        "mean": lambda column: metrics.column_mean(frame, column),
        "std": lambda column: metrics.column_std(frame, column),
        "freshness": lambda column: metrics.freshness(frame, column),
    }
    results = []
    for rule in checks or []:
        name = rule["metric"]
        if name not in compute:
            raise ValueError(f"Unknown metric {name!r}: use one of {sorted(compute)}.")
        column = rule.get("column")
        value = compute[name](column)
        label = "-".join(p for p in (contract_block.contract_name, name, column) if p)
        results.append(
            check(value, label, lower=rule.get("lower"), upper=rule.get("upper"),
                  equal=rule.get("equal"), severity=rule.get("severity", "warning"))
        )
    summary = {
        "rows_read": len(frame),
        "rows_valid": len(valid),
        "contract_version": contract_block.version,
        "checks": {r.name: r.status for r in results},
    }
    publish_summary(
        "data-quality-summary",
        f"Data quality of {table_or_sql if len(table_or_sql) < 60 else 'query'}",
        [("rows read", len(frame)), ("rows valid", len(valid)),
         ("contract version", contract_block.version),
         *[(f"check {r.name}", f"{r.status} ({r.value})") for r in results]],
    )
    return finish_with_warnings(summary)
