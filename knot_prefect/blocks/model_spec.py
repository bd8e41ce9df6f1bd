"""The ``ModelSpec`` block: one description of a model that every flow template reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from knot_prefect.blocks.base import KnotBlock
from knot_prefect.blocks.fields import BlockDocumentName
from knot_prefect.errors import ConfigurationError

ModelTask = Literal["binary", "multiclass", "regression"]


class ModelSpec(KnotBlock):
    """What a model is trained on, how, and where its predictions go, configured once.

    Training, batch inference, monitoring, data quality and ``knot serve`` all read the
    same spec, so they agree on the table, the keys, the label and the model. A flow
    parameter given explicitly overrides the spec's value. Without ``features`` the
    model is trained and scored on the source table's own columns (no feature store);
    with them, Feast joins features point in time at ``timestamp_column``.

    The spec is a block (editable in the Prefect UI, saved with ``knot blocks apply``)
    or a YAML file holding the same fields (``ModelSpec.from_yaml(path)``).

    Examples:
        >>> from knot_prefect.blocks.model_spec import ModelSpec
        >>> spec = ModelSpec(source="analytics.loans", target="defaulted",
        ...                  key_columns=["loan_id"], model_name="loan-default",
        ...                  output_table="analytics.loan_scores", task="binary")
        >>> spec.rows_to_score, spec.uses_feature_store
        ('analytics.loans', False)
    """

    _block_type_name = "knot Model Spec"
    _description = (
        "One description of a model for every knot flow template: source table or "
        "query, entity keys, event timestamp, label, task, features, trainer, contract "
        "and output table."
    )
    _code_example = """
    ```python
    from knot_prefect.blocks.model_spec import ModelSpec
    from knot_prefect.flows import training_flow

    spec = ModelSpec.load("BLOCK_NAME")
    training_flow(spec="BLOCK_NAME")  # every flow template takes the spec's name
    ```
    """

    source: str
    """Table name or SQL query returning the training rows: the entity keys, the label and,
    without a feature store, the model's input columns."""
    target: str
    """The label column the model learns to predict."""
    key_columns: list[str]
    """Columns identifying one entity (one row of predictions)."""
    model_name: str
    """Registered model name in MLflow."""
    output_table: str
    """Table receiving the predictions."""
    task: ModelTask | None = None
    """binary, multiclass or regression; inferred from the label (and logged) when empty."""
    timestamp_column: str | None = None
    """Event-time column of each row; Feast joins features as of this time (required with
    features)."""
    features: str | list[str] | None = None
    """A Feast feature service name or 'view:feature' references; empty to use the source table's
    own columns."""
    scoring_source: str | None = None
    """Table name or SQL query returning the rows to score; the source when empty."""
    trainer: str = "gradient_boosting"
    """A built-in trainer (gradient_boosting, xgboost, lightgbm) or the import path
    'package.module:function' of a trainer following knot's contract."""
    trainer_params: dict[str, Any] = Field(default_factory=dict)
    """Hyperparameters passed to the trainer and logged."""
    contract: BlockDocumentName = None
    """DataContract block document for the training rows."""
    scoring_contract: BlockDocumentName = None
    """DataContract block document for the rows to score."""
    checks: list[dict[str, Any]] | None = None
    """Metric checks on the evaluation ({'metric', 'lower'/'upper'/'equal', 'severity'}); the
    task's default checks when empty."""
    warehouse: BlockDocumentName = None
    """Warehouse block document; local-warehouse when empty."""
    feature_store: BlockDocumentName = None
    """FeastFeatureStore block document; local-features when empty."""
    tracking: BlockDocumentName = None
    """MLflowTracking block document; local-mlflow when empty."""
    spark: BlockDocumentName = None
    """SparkEngine block document batch inference scores on; none when empty."""

    @property
    def rows_to_score(self) -> str:
        """The table or query of the rows to score: ``scoring_source``, else ``source``."""
        return self.scoring_source or self.source

    @property
    def uses_feature_store(self) -> bool:
        """Whether features come from Feast (else from the source table's own columns)."""
        return bool(self.features)

    def check_connection(self) -> str:
        """A spec holds no connection; report what it describes."""
        return f"{self.model_name}: {self.target} from {self.source}"

    @classmethod
    def from_yaml(cls, path: str | Path) -> ModelSpec:
        """Read a spec from a YAML file of the block's fields.

        Raises:
            ConfigurationError: When the file is missing or its fields are wrong.
        """
        import yaml
        from pydantic import ValidationError

        file = Path(path)
        if not file.is_file():
            raise ConfigurationError(f"Model spec file {str(file)!r} does not exist.")
        values = yaml.safe_load(file.read_text()) or {}
        if not isinstance(values, dict):
            raise ConfigurationError(f"Model spec file {str(file)!r} must hold a mapping.")
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigurationError(f"Model spec file {str(file)!r}: {problems}.") from None


def load_model_spec(spec: ModelSpec | str | None) -> ModelSpec | None:
    """A spec block, its document name, or the path of a YAML file; None stays None.

    Examples:
        >>> load_model_spec(None) is None
        True
    """
    if spec is None or isinstance(spec, ModelSpec):
        return spec
    if spec.endswith((".yaml", ".yml")):
        return ModelSpec.from_yaml(spec)
    from knot_prefect.blocks.resolve import resolve_block

    return resolve_block(spec, ModelSpec)
