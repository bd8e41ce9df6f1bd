"""The ``DataContract`` block: a Pandera schema that frames are validated against."""

from __future__ import annotations

import importlib
import re
import threading
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from knot_prefect.blocks.base import KnotBlock
from knot_prefect.blocks.contract_yaml import ContractDefinitionError

if TYPE_CHECKING:
    from pandera.api.pandas.container import DataFrameSchema

_MODEL_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

# Parsing YAML and building a schema costs milliseconds; a flow validates many
# frames against one contract, so schemas are kept per (source text, model).
_SCHEMA_CACHE: dict[tuple[str | None, str | None], tuple[DataFrameSchema, str]] = {}
_CACHE_LOCK = threading.Lock()


class DataContract(KnotBlock):
    """A data contract: a Pandera ``DataFrameSchema`` that frames must satisfy.

    The schema is held as YAML in Pandera's own format (``DataFrameSchema.to_yaml()``),
    editable in the Prefect UI, or referenced as a ``DataFrameModel`` class
    (``"module:Class"``). Its version is a hash of the schema, so it changes whenever
    the schema does; an optional label is put in front of it. Columns marked sensitive
    are masked in every artifact that shows failing rows.

    Examples:
        >>> from knot_prefect.blocks.contract import DataContract
        >>> contract = DataContract(schema_yaml="columns:\\n  amount:\\n    dtype: float64\\n")
        >>> list(contract.schema().columns)
        ['amount']
        >>> len(contract.version)
        12
    """

    _block_type_name = "Data Contract"
    _description = (
        "A Pandera DataFrameSchema (as YAML, or a DataFrameModel reference) that knot's "
        "validate task checks frames against, with sensitive columns masked in reports."
    )
    _code_example = """
    ```python
    from knot_prefect import DataContract
    from knot_prefect.tasks import validate

    contract = DataContract.load("BLOCK_NAME")
    schema = contract.schema()  # a pandera DataFrameSchema
    valid_rows = validate(df, contract, on_failure="raise")
    ```
    """

    schema_yaml: str | None = Field(
        default=None,
        title="Schema YAML",
        description=(
            "The Pandera DataFrameSchema as YAML, in the format written by "
            "DataFrameSchema.to_yaml(); leave empty when a model is given."
        ),
    )
    model: str | None = Field(
        default=None,
        title="DataFrameModel",
        description=(
            "A Pandera DataFrameModel class used instead of YAML, as 'module:Class'; "
            "the module must be importable where flows run."
        ),
    )
    version_label: str | None = Field(
        default=None,
        description=(
            "An optional label put in front of the schema hash in the contract version, "
            "e.g. '2024-06' gives '2024-06+3f2a9c1b7d0e'."
        ),
    )
    sensitive_columns: list[str] = Field(
        default_factory=list,
        description="Columns whose values are masked in artifacts, samples and messages.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> DataContract:
        has_yaml = bool(self.schema_yaml and self.schema_yaml.strip())
        has_model = bool(self.model and self.model.strip())
        if has_yaml == has_model:
            raise ValueError(
                "A DataContract needs exactly one of 'schema_yaml' (Pandera YAML) or "
                "'model' ('module:Class' of a DataFrameModel)."
            )
        if has_model and not _MODEL_REFERENCE.match(str(self.model).strip()):
            raise ValueError(
                f"DataContract model {self.model!r} is not a 'module:Class' reference, "
                "e.g. 'my_project.contracts:Orders'."
            )
        if has_yaml:
            # What is saved must load: the YAML is parsed and its checks resolved now,
            # not in the middle of a flow run. (A model is imported where flows run.)
            try:
                self._parsed()
            except ContractDefinitionError as exc:
                raise ValueError(f"schema_yaml: {exc}") from None
        return self

    # -- identity --------------------------------------------------------------------
    @property
    def contract_name(self) -> str:
        """The block document's name, else the schema's name, else ``"contract"``."""
        document_name = getattr(self, "_block_document_name", None)
        if document_name:
            return str(document_name)
        name = self.schema().name
        return str(name) if name else "contract"

    def _source(self) -> str:
        document_name = getattr(self, "_block_document_name", None)
        return f"DataContract {document_name!r}" if document_name else "DataContract"

    @property
    def version(self) -> str:
        """The contract version: a hash of the schema, after ``version_label`` if set."""
        fingerprint = self._parsed()[1]
        return f"{self.version_label}+{fingerprint}" if self.version_label else fingerprint

    # -- the schema ------------------------------------------------------------------
    def schema(self) -> DataFrameSchema:  # type: ignore[override]
        """The Pandera schema of this contract.

        Returns:
            A ``pandera.DataFrameSchema``; shared between calls, do not mutate it.

        Raises:
            ContractDefinitionError: When the YAML cannot be read (naming the block
                and the line) or the model cannot be imported.
        """
        return self._parsed()[0]

    def _parsed(self) -> tuple[DataFrameSchema, str]:
        from knot_prefect.blocks.contract_yaml import load_schema_yaml, schema_fingerprint

        key = (self.schema_yaml, self.model)
        with _CACHE_LOCK:
            cached = _SCHEMA_CACHE.get(key)
        if cached is not None:
            return cached
        if self.model:
            schema = self._model_schema(self.model.strip())
        else:
            schema = load_schema_yaml(str(self.schema_yaml), self._source())
        parsed = (schema, schema_fingerprint(schema))
        with _CACHE_LOCK:
            _SCHEMA_CACHE[key] = parsed
        return parsed

    def _model_schema(self, reference: str) -> DataFrameSchema:
        from pandera.api.pandas.model import DataFrameModel

        module_name, _, attribute = reference.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise ContractDefinitionError(
                f"{self._source()}: model {reference!r} cannot be imported ({exc}). "
                "Install the module where the flow runs or fix the reference."
            ) from exc
        if not (isinstance(target, type) and issubclass(target, DataFrameModel)):
            raise ContractDefinitionError(
                f"{self._source()}: {reference!r} is not a pandera DataFrameModel class."
            )
        return target.to_schema()

    def check_connection(self) -> str:
        """Build the schema, which is what a contract needs to work.

        Returns:
            The number of columns and the version.
        """
        schema = self.schema()
        return f"{len(schema.columns)} columns, version {self.version}"
