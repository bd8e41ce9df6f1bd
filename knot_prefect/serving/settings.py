"""What a ``knot serve`` process serves and how: the model, its features, its limits."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from knot_prefect.errors import ConfigurationError


def parse_model_reference(reference: str) -> tuple[str, str]:
    """Split ``NAME@ALIAS`` into the registered model name and the alias.

    Examples:
        >>> parse_model_reference("churn@champion")
        ('churn', 'champion')
    """
    name, separator, alias = reference.strip().rpartition("@")
    if not separator or not name or not alias:
        raise ConfigurationError(
            f"Model reference {reference!r} is not of the form NAME@ALIAS, "
            "e.g. churn@champion."
        )
    return name, alias


class ServeSettings(BaseModel):
    """Settings of one prediction service.

    Features come from a Feast store (``features``), or, for a model trained on a
    warehouse table's own columns, from the latest row per key of that table
    (``source`` in ``warehouse``, keyed by ``key_columns``). Blocks are given by
    document name; a Feast repo folder, an MLflow tracking URI or a contract YAML
    file may be given instead, for a service run without a Prefect API.

    Examples:
        >>> settings = ServeSettings(model="churn@champion", features="local-features")
        >>> settings.model_name, settings.alias, settings.stale
        ('churn', 'champion', 'error')
        >>> ServeSettings(model="loans@champion", warehouse="team-warehouse",
        ...               source="analytics.loans", key_columns=["loan_ref"]).source
        'analytics.loans'
    """

    # Each field's docstring is its description in the JSON schema.
    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    model: str
    """The registered model and alias to follow, as NAME@ALIAS."""
    features: str | None = None
    """FeastFeatureStore block document name, or the folder of a Feast repo; empty to
    read the source table's own columns."""
    source: str | None = None
    """Table name or SQL query whose latest row per key holds the model's inputs
    (instead of a feature store)."""
    warehouse: str | None = None
    """Warehouse block document holding the source; local-warehouse when empty."""
    key_columns: list[str] | None = None
    """Entity key columns of the source, carried by a request."""
    timestamp_column: str | None = None
    """Event-time column of the source: the latest row per key is read."""
    contract: str | None = None
    """DataContract block document name, or a Pandera YAML file (optional)."""
    tracking: str | None = None
    """MLflowTracking block document name, or a tracking URI; the embedded store in the
    knot home when empty."""
    feature_service: str | None = None
    """Feast feature service to read; by default each model input is looked up by name
    in the store's feature views."""
    max_feature_age: float | None = Field(default=None, gt=0)
    """Oldest acceptable feature value, in seconds (no limit when empty)."""
    stale: Literal["error", "flag"] = "error"
    """Answer to features older than max_feature_age: an error, or a flag."""
    refresh: float = Field(default=30.0, gt=0)
    """Seconds between checks of where the alias points."""
    max_batch: int = Field(default=1000, ge=1)
    """Most entities one request may ask for."""
    shadow: str | None = None
    """Another alias of the model (e.g. challenger) that scores the same requests off
    the response path; both scores are appended to shadow_table."""
    shadow_table: str = "shadow_scores"
    """Table of the warehouse (local-warehouse when empty) for shadow scores."""
    shadow_sample: float = Field(default=1.0, ge=0, le=1)
    """Fraction of requests the shadow scores."""
    shadow_queue: int = Field(default=1000, ge=1)
    """Most shadowed requests waiting; more are dropped, never waited for."""

    @field_validator("model")
    @classmethod
    def _model_reference(cls, value: str) -> str:
        try:
            parse_model_reference(value)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return value.strip()

    @model_validator(mode="after")
    def _one_feature_source(self) -> ServeSettings:
        if bool(self.features) == bool(self.source):
            raise ValueError(
                "Give exactly one feature source: features (a Feast store, --features) "
                "or source (a warehouse table with key_columns, --source and --key)."
            )
        if self.source and not self.key_columns:
            raise ValueError(
                "A warehouse source needs key_columns (--key COLUMN): the columns a "
                "request carries to find its row."
            )
        return self

    @classmethod
    def from_spec(cls, spec: str, alias: str = "champion", **overrides: Any) -> ServeSettings:
        """Settings from a model spec (document name or YAML path); ``overrides`` win.

        The spec gives the model, its features and the tracking document, so the
        service scores exactly what the flows trained: with a feature service, from
        the Feast store; on the table's own columns, from the latest row per key of
        the rows batch inference scores (``scoring_source``, else ``source``).

        Raises:
            ConfigurationError: The spec cannot be read.
        """
        from knot_prefect.blocks.model_spec import load_model_spec

        model_spec = load_model_spec(spec)
        if model_spec is None:  # pragma: no cover - a name loads or raises
            raise ConfigurationError("Pass the name or the YAML path of a model spec.")
        given = {key: value for key, value in overrides.items() if value is not None}
        values: dict[str, Any] = {"model": f"{model_spec.model_name}@{alias}",
                                  "tracking": model_spec.tracking}
        if model_spec.features or "features" in given:
            values.update(
                features=model_spec.feature_store or "local-features",
                feature_service=(model_spec.features if isinstance(model_spec.features, str)
                                 else None),
            )
        else:
            values.update(source=model_spec.rows_to_score, warehouse=model_spec.warehouse,
                          key_columns=model_spec.key_columns,
                          timestamp_column=model_spec.timestamp_column)
        return cls(**{**values, **given})

    @property
    def model_name(self) -> str:
        """The registered model name."""
        return parse_model_reference(self.model)[0]

    @property
    def alias(self) -> str:
        """The alias that is followed."""
        return parse_model_reference(self.model)[1]
