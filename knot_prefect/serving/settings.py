"""What a ``knot serve`` process serves and how: the model, its features, its limits."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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

    Blocks are given by document name; a Feast repo folder, an MLflow tracking URI
    or a contract YAML file may be given instead, for a service run without a
    Prefect API.

    Examples:
        >>> settings = ServeSettings(model="churn@champion", features="local-features")
        >>> settings.model_name, settings.alias, settings.stale
        ('churn', 'champion', 'error')
    """

    model_config = ConfigDict(frozen=True)

    model: str = Field(description="The registered model and alias to follow, as NAME@ALIAS.")
    features: str = Field(
        description="FeastFeatureStore block document name, or the folder of a Feast repo."
    )
    contract: str | None = Field(
        default=None,
        description="DataContract block document name, or a Pandera YAML file (optional).",
    )
    tracking: str | None = Field(
        default=None,
        description=(
            "MLflowTracking block document name, or a tracking URI; the embedded store "
            "in the knot home when empty."
        ),
    )
    feature_service: str | None = Field(
        default=None,
        description=(
            "Feast feature service to read; by default each model input is looked up "
            "by name in the store's feature views."
        ),
    )
    max_feature_age: float | None = Field(
        default=None,
        gt=0,
        description="Oldest acceptable feature value, in seconds (no limit when empty).",
    )
    stale: Literal["error", "flag"] = Field(
        default="error",
        description="Answer to features older than max_feature_age: an error, or a flag.",
    )
    refresh: float = Field(
        default=30.0,
        gt=0,
        description="Seconds between checks of where the alias points.",
    )
    max_batch: int = Field(
        default=1000, ge=1, description="Most entities one request may ask for."
    )

    @field_validator("model")
    @classmethod
    def _model_reference(cls, value: str) -> str:
        try:
            parse_model_reference(value)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return value.strip()

    @classmethod
    def from_spec(cls, spec: str, alias: str = "champion", **overrides: Any) -> ServeSettings:
        """Settings from a model spec (document name or YAML path); ``overrides`` win.

        The spec gives the model, the feature store, the feature service and the
        tracking document, so the service scores exactly what the flows trained.

        Raises:
            ConfigurationError: The spec reads the table's own columns: serving needs
                a feature store to look features up by key.
        """
        from knot_prefect.blocks.model_spec import load_model_spec

        model_spec = load_model_spec(spec)
        if model_spec is None:  # pragma: no cover - a name loads or raises
            raise ConfigurationError("Pass the name or the YAML path of a model spec.")
        given = {key: value for key, value in overrides.items() if value is not None}
        if not model_spec.features and "features" not in given:
            raise ConfigurationError(
                f"Model spec {spec!r} has no features: its model reads the table's own "
                "columns, and knot serve looks features up by key in a Feast online "
                "store. Set the spec's features (a feature service), or pass --features "
                "STORE with a store holding the model's inputs."
            )
        values: dict[str, Any] = {
            "model": f"{model_spec.model_name}@{alias}",
            "features": model_spec.feature_store or "local-features",
            "tracking": model_spec.tracking,
            "feature_service": (model_spec.features if isinstance(model_spec.features, str)
                                else None),
        }
        return cls(**{**values, **given})

    @property
    def model_name(self) -> str:
        """The registered model name."""
        return parse_model_reference(self.model)[0]

    @property
    def alias(self) -> str:
        """The alias that is followed."""
        return parse_model_reference(self.model)[1]
