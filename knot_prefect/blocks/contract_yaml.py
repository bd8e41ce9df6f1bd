"""Read a contract's Pandera YAML, with errors that name the offending line.

Pandera's own reader (``DataFrameSchema.from_yaml``) does the work; this module adds
what a contract edited by hand in the Prefect UI needs: a YAML syntax error, an
unknown key (which Pandera would silently ignore) or a dtype or check Pandera does
not know is reported with the line it is on.

Examples:
    >>> schema = load_schema_yaml("columns:\\n  a:\\n    dtype: int64\\n", "DataContract 'x'")
    >>> list(schema.columns)
    ['a']
    >>> load_schema_yaml("columns:\\n  a:\\n    dtype: integr\\n", "DataContract 'x'")
    Traceback (most recent call last):
    ...
    knot_prefect.blocks.contract_yaml.ContractDefinitionError: DataContract 'x', line 3 ...
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml

from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    from pandera.api.pandas.container import DataFrameSchema

# Keys Pandera reads at the top of a DataFrameSchema YAML document.
SCHEMA_KEYS = frozenset(
    {
        "schema_type", "api", "dataframe_library", "version", "columns", "index", "checks",
        "dtype", "coerce", "strict", "name", "ordered", "unique", "report_duplicates",
        "unique_column_names", "add_missing_columns", "title", "description", "metadata",
        "drop_invalid_rows", "multiindex", "parsers",
    }
)  # fmt: skip


class ContractDefinitionError(ConfigurationError):
    """A contract's YAML or model reference cannot be turned into a Pandera schema.

    Attributes:
        line: The 1-based line of the YAML that is wrong, when known.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 1


def _child(node: yaml.Node | None, key: str) -> tuple[yaml.Node | None, yaml.Node | None]:
    """The key node and value node of ``key`` in a mapping node."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) == key:
                return key_node, value_node
    return None, None


def _fail(source: str, line: int, where: str, problem: str) -> ContractDefinitionError:
    place = f"line {line} ({where})" if where else f"line {line}"
    return ContractDefinitionError(
        f"{source}, {place}: {problem}. Fix the contract YAML (Pandera's "
        "DataFrameSchema.to_yaml format) and save it again.",
        line=line,
    )


def _is_check_name(key: str) -> bool:
    from pandera.api.checks import Check

    return callable(getattr(Check, key, None))


def _lint_component(source: str, where: str, stats: Any, node: yaml.Node | None) -> None:
    """Refuse keys of a column that Pandera would silently ignore."""
    from pandera.io._flat_checks import COMPONENT_RESERVED_KEYS

    if stats is None:
        return
    if not isinstance(stats, Mapping):
        raise _fail(source, _line(node), where, "a column must be a mapping of properties")
    for key in stats:
        if key in COMPONENT_RESERVED_KEYS or _is_check_name(str(key)):
            continue
        key_node, _ = _child(node, str(key))
        raise _fail(
            source,
            _line(key_node),
            f"{where}.{key}",
            f"unknown column property or check {key!r} (a misspelt check would be "
            "ignored, so it is refused)",
        )


def _lint(source: str, data: Mapping[str, Any], root: yaml.Node) -> None:
    for key in data:
        if key not in SCHEMA_KEYS:
            key_node, _ = _child(root, str(key))
            raise _fail(source, _line(key_node), str(key), f"unknown schema key {key!r}")
    columns = data.get("columns")
    _, columns_node = _child(root, "columns")
    if columns is None:
        return
    if not isinstance(columns, Mapping):
        raise _fail(source, _line(columns_node), "columns", "'columns' must be a mapping")
    for name, stats in columns.items():
        _, column_node = _child(columns_node, str(name))
        _lint_component(source, f"columns.{name}", stats, column_node)


def _failing_check(
    name: str,
    base: dict[str, Any],
    checks: Any,
    checks_node: yaml.Node | None,
    where: str,
    fails: Any,
) -> tuple[yaml.Node | None, str]:
    """The node and path of the one check, in a ``checks:`` mapping or list, that fails."""
    if isinstance(checks, Mapping) and isinstance(checks_node, yaml.MappingNode):
        for (key_node, _), (check, value) in zip(checks_node.value, checks.items(), strict=False):
            if fails({"columns": {name: {**base, "checks": {check: value}}}}):
                return key_node, f"{where}.{check}"
    if isinstance(checks, list) and isinstance(checks_node, yaml.SequenceNode):
        for index, (item_node, item) in enumerate(zip(checks_node.value, checks, strict=False)):
            if fails({"columns": {name: {**base, "checks": [item]}}}):
                return item_node, f"{where}[{index}]"
    return checks_node, where


def _locate(source: str, data: Mapping[str, Any], root: yaml.Node, exc: Exception) -> Exception:
    """Find the column property (or schema check) that makes Pandera fail."""
    from pandera.io.pandas_io import deserialize_schema

    def fails(candidate: Mapping[str, Any]) -> bool:
        try:
            deserialize_schema(candidate)
        except Exception:
            return True
        return False

    problem = f"{type(exc).__name__}: {str(exc).rstrip('.')}"
    _, columns_node = _child(root, "columns")
    for name, stats in (data.get("columns") or {}).items():
        if not fails({"columns": {name: stats}}):
            continue
        _, column_node = _child(columns_node, str(name))
        stats = dict(stats or {})
        base = {"dtype": stats["dtype"]} if "dtype" in stats else {}
        if base and fails({"columns": {name: base}}):
            key_node, _ = _child(column_node, "dtype")
            return _fail(source, _line(key_node), f"columns.{name}.dtype", problem)
        for key, value in stats.items():
            if key != "dtype" and fails({"columns": {name: {**base, key: value}}}):
                key_node, value_node = _child(column_node, str(key))
                where = f"columns.{name}.{key}"
                if key == "checks":
                    key_node, where = _failing_check(name, base, value, value_node, where, fails)
                return _fail(source, _line(key_node), where, problem)
        return _fail(source, _line(column_node), f"columns.{name}", problem)
    for key in data:
        if key != "columns" and fails({key: data[key]}):
            key_node, _ = _child(root, str(key))
            return _fail(source, _line(key_node), str(key), problem)
    return _fail(source, 1, "", problem)


def load_schema_yaml(text: str, source: str) -> DataFrameSchema:
    """Turn a contract's YAML into a Pandera ``DataFrameSchema``.

    Args:
        text: The YAML, as written by ``DataFrameSchema.to_yaml()``.
        source: What holds the YAML, for messages (e.g. ``"DataContract 'orders'"``).

    Returns:
        The schema.

    Raises:
        ContractDefinitionError: Naming ``source``, the line and what is wrong.
    """
    from pandera.io.pandas_io import deserialize_schema

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise _fail(source, line, "", f"the YAML cannot be parsed: {exc.problem}") from exc
    if root is None or not isinstance(data, Mapping):
        raise _fail(source, 1, "", "the YAML must be a mapping with a 'columns' key")
    _lint(source, data, root)
    try:
        return deserialize_schema(data)
    except Exception as exc:
        raise _locate(source, data, root, exc) from exc


def schema_fingerprint(schema: DataFrameSchema) -> str:
    """A short hash of a schema's content: the contract version changes with it.

    The schema is first written in Pandera's canonical YAML, so comments, key order
    and spacing in the stored text do not change the version.

    Args:
        schema: The Pandera schema.

    Returns:
        12 hexadecimal characters.
    """
    try:
        canonical = schema.to_yaml() or ""
    except Exception:
        # Custom checks (functions) cannot be written as YAML; their repr still
        # changes when the schema's structure does.
        canonical = repr(schema)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]
