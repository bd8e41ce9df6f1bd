"""Staged writes on SQL warehouses: hidden stage tables, published in one transaction.

The algorithm lives here once; each SQL backend (DuckDB, PostgreSQL via ADBC or
SQLAlchemy, SQLite, Snowflake, BigQuery) supplies a :class:`SqlSession`, its
dialect's hooks over one transaction.

- :meth:`SqlStagedWarehouse.stage` writes a part's rows into a stage table next to the
  target, named ``_knot_stage_<table>_<id>_<part>`` (within every backend's name limit).
  Readers of the target never see them; staging the same part again replaces it.
- :meth:`SqlStagedWarehouse.commit_staged` checks the keys over all parts, then in one
  transaction adds new columns, publishes the parts with the requested mode and drops
  the stages. A failure rolls all of it back.
- :meth:`SqlStagedWarehouse.discard_staged` drops the stages of a write given up, and
  :meth:`SqlStagedWarehouse.drop_stale_stages` (run after every commit) those a killed
  process left behind.

Examples:
    >>> stage_table_name(TableName.parse("ml.scores"), "1765000000000-" + "ab" * 16 + "-stage", 3)
    TableName(table='_knot_stage_scores_6933c340abab_3', schema='ml')
"""

from __future__ import annotations

import contextlib
import re
import time
from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from knot_prefect.blocks.warehouses._common import (
    WritePlan,
    check_key_columns,
    plan_write,
)
from knot_prefect.blocks.warehouses.base import (
    Evolve,
    SchemaMismatchError,
    StagedPart,
    Warehouse,
    WarehouseError,
    WriteMode,
    encode_schema,
    to_arrow,
    validate_write_mode,
    warehouse_logger,
)
from knot_prefect.blocks.warehouses.identifiers import TableName
from knot_prefect.blocks.warehouses.sql_session import SqlSession

if TYPE_CHECKING:
    import pyarrow as pa

STAGE_PREFIX = "_knot_stage_"
# A stage older than this is taken for a leftover of a killed run and dropped.
STALE_STAGE_SECONDS = 24 * 3600

_STAGE_ID = re.compile(r"(\d{13})-([0-9a-f]{32})-stage")
_STAGE_TAIL = re.compile(r"([0-9a-f]{8})[0-9a-f]{4}_\d+")


def stage_table_name(target: TableName, stage_id: str, part: int) -> TableName:
    """The stage table of one part: next to the target, within a 63-character limit.

    The name carries the stage's creation time (seconds, hex), so stale stages are
    found by name.

    Raises:
        WarehouseError: For a ``stage_id`` not made by ``new_stage_id``.
    """
    match = check_stage_id(stage_id, part)
    seconds = int(match.group(1)) // 1000
    return target.with_table(
        f"{_stage_base(target)}{seconds:08x}{match.group(2)[:4]}_{part}"
    )


def check_stage_id(stage_id: str, part: int) -> re.Match[str]:
    """Refuse a stage id not made by ``new_stage_id`` and a part number out of range.

    Returns:
        The id's match: its creation time (milliseconds) and its random part.

    Raises:
        WarehouseError: Naming the bad id or part.
    """
    match = _STAGE_ID.fullmatch(stage_id)
    if match is None:
        raise WarehouseError(
            f"{stage_id!r} is not a stage id: take one from warehouse.new_stage_id()."
        )
    if not 0 <= part < 100_000:
        raise WarehouseError(f"Part number {part} is out of range: use 0 to 99999.")
    return match


def parts_to_commit(table: str, parts: Sequence[StagedPart], keys: Sequence[str],
                    mode: str) -> tuple[list[StagedPart], int]:
    """The checks every ``commit_staged`` starts with; the parts holding rows, and their rows.

    Refuses an unknown mode (or an ``upsert`` without keys) and parts staged for
    another table; logs a commit with nothing to publish (zero rows).

    Raises:
        WarehouseError: For parts of another table or a bad mode.
    """
    validate_write_mode(mode, keys)
    others = sorted({part.table for part in parts} - {table})
    if others:
        raise WarehouseError(
            f"commit_staged({table!r}) was given parts staged for {others}: commit "
            "each table's parts separately."
        )
    parts = [part for part in parts if part.rows]
    rows = sum(part.rows for part in parts)
    if not rows:
        warehouse_logger().info("Nothing to commit to %s: no rows were staged.", table)
    return parts, rows


def is_frame(data: Any) -> bool:
    """Whether ``data`` is one frame (pandas, polars, pyarrow), not an iterable of them."""
    import pyarrow as pa

    module = type(data).__module__.split(".")[0]
    return isinstance(data, pa.Table | pa.RecordBatch) or module in ("pandas", "polars")


def _stage_base(target: TableName) -> str:
    return f"{STAGE_PREFIX}{re.sub(r'[^A-Za-z0-9_]', '_', target.table)[:24]}_"


class SqlStagedWarehouse(Warehouse):
    """A warehouse whose staged writes are stage tables published in one transaction."""

    @abstractmethod
    def _session(self) -> contextlib.AbstractContextManager[SqlSession]:
        """A :class:`SqlSession` in one transaction, committed when the block ends."""

    def _target(self, table: str) -> TableName:
        """The table's full name (default schema filled in), checked against the limit."""
        name = self.table_name(table)
        default = self._default_schema()
        return name if name.schema or default is None else TableName(name.table, default)

    def _default_schema(self) -> str | None:
        """The schema (dataset) of table names given without one; None: the server's."""
        return None

    def _stage_frame(
        self, session: SqlSession, target: TableName, data: pa.Table
    ) -> contextlib.AbstractContextManager[TableName]:
        """Load a write's frame into a stage table next to ``target``, dropped on exit.

        Backends whose ``_write_arrow`` is :meth:`_write_through_stage` implement it.
        """
        raise NotImplementedError

    def _write_through_stage(
        self, data: pa.Table, table: str, mode: str, keys: list[str], evolve: Evolve
    ) -> int:
        """A write as one bulk load into a stage table, then one publishing statement.

        For warehouses whose DDL commits at once: the target changes in the
        publishing statement alone, and the stage goes whatever happened.
        """
        target = self._target(table)
        with self._session() as session:
            plan = plan_publish(session, target, data.schema, table, mode, keys, evolve,
                                self.describe())
            with self._stage_frame(session, target, data) as stage:
                publish(session, target, data.schema, session.full(stage), plan)
        return data.num_rows

    def stage(self, data: Any, table: str, stage_id: str, part: int = 0,
              unique_keys: Sequence[str] | None = None) -> StagedPart:
        """Write rows into a stage table of ``table``: see :meth:`Warehouse.stage`.

        Examples:
            >>> import pandas as pd
            >>> from knot_prefect import DuckDBWarehouse
            >>> warehouse = DuckDBWarehouse(path=":memory:")
            >>> stage_id = warehouse.new_stage_id()
            >>> part = warehouse.stage(pd.DataFrame({"id": [1, 2]}), "ids", stage_id)
            >>> warehouse.table_exists("ids")
            False
            >>> warehouse.commit_staged("ids", [part], keys=["id"])
            2
            >>> warehouse.read("select count(*) as n from ids")["n"].tolist()
            [2]
        """
        target = self._target(table)
        stage = stage_table_name(target, stage_id, part)
        frames = [data] if is_frame(data) else data
        schema: pa.Schema | None = None
        rows = 0
        try:
            for frame in frames:
                arrow = to_arrow(frame)
                if not arrow.num_rows:
                    continue
                arrow = self._prepare_frame(arrow, table)
                # The first frame replaces what a retried attempt of this part staged.
                self.write(arrow, str(stage), mode="append" if schema else "replace")
                schema = schema or arrow.schema
                rows += arrow.num_rows
            if schema is None:
                self._drop_stages([stage])
            elif unique_keys:
                with self._session() as session:
                    _check_keys(session, f"SELECT * FROM {session.full(stage)}",
                                list(unique_keys), table, check_unique=True)
        except BaseException:
            with contextlib.suppress(Exception):
                self._drop_stages([stage])
            raise
        return StagedPart(table=table, stage_id=stage_id, part=part, rows=rows,
                          schema=encode_schema(schema) if schema else None,
                          stage_table=stage.table)

    def commit_staged(
        self,
        table: str,
        parts: Sequence[StagedPart],
        keys: Sequence[str] = (),
        evolve: Evolve = False,
        check_unique: bool = True,
        mode: WriteMode = "upsert",
    ) -> int:
        """Publish every staged part in one transaction: see :meth:`Warehouse.commit_staged`.

        Args:
            table: ``"table"`` or ``"schema.table"``; created when missing.
            parts: What :meth:`stage` returned, for every part of the write.
            keys: Columns identifying a row (required by ``upsert``).
            evolve: Allow new columns to be added to an existing table.
            check_unique: Check that no key is staged twice.
            mode: ``upsert`` (default), ``append``, ``replace`` or ``fail``, as in
                :meth:`Warehouse.write`.

        Returns:
            Rows published.

        Raises:
            SchemaMismatchError: For a null or repeated key, parts with different
                columns, new columns without ``evolve``, or types the table cannot hold.
            TableExistsError: For ``mode='fail'`` when the table exists.
        """
        parts, rows = parts_to_commit(table, parts, keys, mode)
        target = self._target(table)
        keys = list(keys)
        self.check_column_names(keys, "upsert key")
        if not rows:
            return 0
        schema = _common_schema(parts, table)
        check_key_columns(keys, schema.names, f"the rows staged for {table}")
        stages = [stage_table_name(target, part.stage_id, part.part) for part in parts]
        with self._session() as session:
            source = _union(session, stages, schema.names)
            if keys:
                _check_keys(session, source, keys, table, check_unique)
            plan = plan_publish(session, target, schema, table, mode, keys, evolve,
                                self.describe())
            publish(session, target, schema, source, plan)
            if session.transactional_ddl:
                for stage in stages:
                    session.drop(stage)
        if not session.transactional_ddl:
            self._drop_stages(stages, quietly=True)
        try:
            self.drop_stale_stages(table)
        except Exception as exc:  # the rows are published; leftovers wait for the next commit
            warehouse_logger().warning("Could not look for stale stages of %s: %s", table, exc)
        return rows

    def discard_staged(self, parts: Sequence[StagedPart]) -> None:
        """Drop the stage tables of parts that will not be committed."""
        self._drop_stages([
            stage_table_name(self._target(part.table), part.stage_id, part.part)
            for part in parts
        ])

    def drop_stale_stages(self, table: str, older_than: float = STALE_STAGE_SECONDS) -> int:
        """Drop the stage tables of ``table`` older than ``older_than`` seconds.

        A process killed between staging and committing leaves its stage tables
        behind; every commit to the table runs this, and it may be called at any time.

        Returns:
            The number of stage tables dropped.
        """
        target = self._target(table)
        base = _stage_base(target)
        oldest = time.time() - older_than
        with self._session() as session:
            names = session.table_names(target.schema)
        stale = []
        for name in names:
            tail = _STAGE_TAIL.fullmatch(name[len(base):]) if name.startswith(base) else None
            if tail and int(tail.group(1), 16) < oldest:
                stale.append(target.with_table(name))
        self._drop_stages(stale, quietly=True)
        return len(stale)

    def describe(self) -> str:
        """The warehouse as text without secrets (for messages)."""
        return type(self).__name__

    def _drop_stages(self, stages: Sequence[TableName], quietly: bool = False) -> None:
        if not stages:
            return
        try:
            with self._session() as session:
                for stage in stages:
                    session.drop(stage)
        except WarehouseError as exc:
            if not quietly:
                raise
            warehouse_logger().warning(
                "Could not drop the stage tables %s (%s); drop_stale_stages removes them "
                "later.", ", ".join(map(str, stages)), exc)


def plan_publish(
    session: SqlSession,
    target: TableName,
    schema: pa.Schema,
    table: str,
    mode: str,
    keys: Sequence[str],
    evolve: Evolve,
    where: str,
) -> WritePlan:
    """The checks of a write against the target as it is now (see ``plan_write``)."""
    existing = session.families(target)
    if not existing and session.lock_new_table(target):
        existing = session.families(target)  # a first writer may have created it meanwhile
    return plan_write(schema.empty_table(), table, mode, keys, evolve, existing, where,
                      session.case_insensitive)


def publish(
    session: SqlSession, target: TableName, schema: pa.Schema, source: str, plan: WritePlan
) -> None:
    """Change the target from a source of rows, as planned: the publishing step of writes.

    Args:
        session: The transaction.
        target: The table written.
        schema: The source's columns.
        source: A table or a parenthesised query holding the rows.
        plan: From :func:`plan_publish`.
    """
    if plan.creates:
        session.create_schema(target)
        session.create(target, schema, source, plan.exists,
                       plan.keys if plan.mode == "upsert" else [])
        return
    for column in plan.new_columns:
        session.add_column(target, column, schema.field(column).type)
    if plan.mode == "upsert":
        session.upsert(target, source, schema.names, plan.keys)
    else:
        session.append(target, source, schema.names)


def _union(session: SqlSession, stages: Sequence[TableName], columns: Sequence[str]) -> str:
    listed = ", ".join(session.q(c) for c in columns)
    selects = [f"SELECT {listed} FROM {session.full(stage)}" for stage in stages]
    return f"({' UNION ALL '.join(selects)})"


def _check_keys(
    session: SqlSession, source: str, keys: list[str], table: str, check_unique: bool
) -> None:
    """Refuse null keys and, when asked, keys staged more than once."""
    if not source.startswith("("):
        source = f"({source})"
    quoted = ", ".join(session.q(k) for k in keys)
    nulls = " OR ".join(f"{session.q(k)} IS NULL" for k in keys)
    found = session.rows(f"SELECT count(*) FROM {source} AS s WHERE {nulls}")
    if found and found[0][0]:
        raise SchemaMismatchError(
            f"Upsert keys {keys} are null in {found[0][0]} staged row(s) for {table}: "
            "every row needs a key value. Nothing was written."
        )
    if not check_unique:
        return
    repeated = session.rows(
        f"SELECT {quoted}, count(*) FROM {source} AS s GROUP BY {quoted} "
        "HAVING count(*) > 1 LIMIT 1"
    )
    if repeated:
        example = dict(zip(keys, repeated[0][:-1], strict=True))
        raise SchemaMismatchError(
            f"Upsert keys {keys} repeat in the rows staged for {table}, e.g. {example} "
            f"({repeated[0][-1]} times): deduplicate the rows first. Nothing was written."
        )


def _common_schema(parts: Sequence[StagedPart], table: str) -> pa.Schema:
    """The parts' one schema (types widened where parts differ, e.g. an all-null column)."""
    import pyarrow as pa

    schemas = [schema for part in parts if (schema := part.arrow_schema()) is not None]
    names = {tuple(schema.names) for schema in schemas}
    if len(names) > 1:
        raise SchemaMismatchError(
            f"The parts staged for {table} have different columns ({sorted(names)}): "
            "stage every part with the same columns."
        )
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaMismatchError(
            f"The parts staged for {table} have column types that do not combine: {exc}"
        ) from None
