"""Request and response bodies of ``POST /predict``, typed from the served entity keys.

An entity object holds its keys and, optionally, ``features``: every feature value of
the model, scored instead of those the source holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    create_model,
    model_validator,
)

from knot_prefect.serving.features import JoinKey

Scalar = StrictInt | StrictFloat | StrictStr | StrictBool


def _no_text_or_bool(value: Any) -> Any:
    # JSON Schema's "integer" includes 1.0 (which pydantic turns into 1), but a key
    # sent as text or as true/false is a mistake worth naming.
    if isinstance(value, str | bool):
        raise ValueError(f"Input should be a valid integer, not {type(value).__name__}")
    return value


# The entity field carrying feature values sent with the request.
SENT_FEATURES = "features"
# MLflow signature column types -> the JSON kind a sent feature value must have.
_SIGNATURE_KINDS = {"long": "int", "integer": "int", "double": "float", "float": "float",
                    "boolean": "bool", "string": "str"}


def input_kinds(model: Any) -> dict[str, str]:
    """Input name -> ``int``, ``float``, ``bool``, ``str`` or ``any``, from a model signature.

    Examples:
        >>> input_kinds(object())
        {}
    """
    metadata = getattr(model, "metadata", None)
    schema = metadata.get_input_schema() if metadata is not None else None
    if schema is None or not schema.has_input_names():
        return {}
    return {str(column.name): _SIGNATURE_KINDS.get(getattr(column.type, "name", ""), "any")
            for column in schema.inputs}


def _feature_type(name: str, kind: str) -> Any:
    description = f"Value of the feature {name}."
    if kind == "int":
        # Integers JSON numbers hold exactly (a wider value is no sensible feature).
        # (Field before the validator: after it, the bounds miss the JSON schema.)
        return Annotated[int, Field(ge=-(2**53), le=2**53, description=description),
                         BeforeValidator(_no_text_or_bool)]
    if kind == "float":
        return Annotated[float, Field(allow_inf_nan=False, description=description),
                         BeforeValidator(_no_text_or_bool)]
    value = {"bool": StrictBool, "str": StrictStr}.get(kind, Scalar)
    return Annotated[value, Field(description=description)]


def _key_type(key: JoinKey) -> Any:
    description = f"The {key.name} entity key."
    if key.kind == "int":
        # No range here: a key beyond the store's integer width cannot exist, which
        # the service answers with 404 naming it.
        return Annotated[int, BeforeValidator(_no_text_or_bool), Field(description=description)]
    if key.kind == "float":
        return Annotated[StrictFloat, Field(allow_inf_nan=False, description=description)]
    if key.kind == "bool":
        return Annotated[StrictBool, Field(description=description)]
    # Bytes keys are sent as text, like strings.
    return Annotated[StrictStr, Field(min_length=1, max_length=1024, description=description)]


class _EntityBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _RequestBase(BaseModel):
    # The document says what the validator enforces: exactly one of the two forms.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["entity"]}, {"required": ["entities"]}]},
    )

    @model_validator(mode="after")
    def _one_form(self) -> _RequestBase:
        given = [name for name in ("entity", "entities") if name in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(
                "Send exactly one of 'entity' (one key object) or 'entities' (a list of them)."
            )
        return self

    def keys(self) -> list[dict[str, Any]]:
        """The entity keys asked for, in request order."""
        entity = getattr(self, "entity", None)
        items = [entity] if entity is not None else list(getattr(self, "entities", None) or [])
        return [item.model_dump(exclude_unset=True) for item in items]


def request_model(
    join_keys: Sequence[JoinKey], max_batch: int, features: Mapping[str, str] | None = None
) -> type[_RequestBase]:
    """The ``POST /predict`` body: ``{"entity": {...}}`` or ``{"entities": [{...}, ...]}``.

    Args:
        join_keys: The keys every entity carries.
        max_batch: Most entities in one request.
        features: Feature name -> kind (``int``, ``float``, ``bool``, ``str``, ``any``)
            of the features an entity may send itself, all together, as ``features``.

    Examples:
        >>> Request = request_model([JoinKey("customer_id", "int")], max_batch=10,
        ...                         features={"tenure": "int"})
        >>> Request.model_validate({"entities": [{"customer_id": 7}]}).keys()
        [{'customer_id': 7}]
        >>> Request.model_validate(
        ...     {"entity": {"customer_id": 7, "features": {"tenure": 3}}}).keys()
        [{'customer_id': 7, 'features': {'tenure': 3}}]
    """
    fields: dict[str, Any] = {key.name: (_key_type(key), ...) for key in join_keys}
    if features and SENT_FEATURES not in fields:
        values: dict[str, Any] = {name: (_feature_type(name, kind), ...)
                                  for name, kind in features.items()}
        sent = create_model("SentFeatures", __base__=_EntityBase, **values)
        fields[SENT_FEATURES] = (sent | None, Field(
            default=None,
            description=("Every feature value of the model, scored instead of those the "
                         "feature source holds (optional)."),
        ))
    entity = create_model("EntityKey", __base__=_EntityBase, **fields)
    # Absent fields stay None (defaults are not validated); an explicit null is refused.
    return create_model(
        "PredictRequest",
        __base__=_RequestBase,
        entity=(
            entity,
            Field(default=None, description="One entity to score."),
        ),
        entities=(
            Annotated[list[entity], Field(min_length=1, max_length=max_batch)],  # type: ignore[valid-type]
            Field(default=None, description=f"Entities to score (1 to {max_batch})."),
        ),
    )


class ModelInfo(BaseModel):
    """The model version that scored the request."""

    name: str = Field(description="Registered model name.")
    version: int = Field(description="Model version that scored.")
    alias: str = Field(description="The alias followed.")
    uri: str = Field(description="Pinned model URI, models:/NAME/VERSION.")


class FeatureViewInfo(BaseModel):
    """A feature view read, with the hash of its definition."""

    name: str = Field(description="Feature view name.")
    version: str = Field(description="First 12 hex digits of the SHA-256 of the view's spec.")


class Prediction(BaseModel):
    """The answer for one entity."""

    entity: dict[str, Scalar] = Field(description="The entity key, as sent.")
    prediction: Scalar | list[Scalar] | None = Field(
        description=(
            "The predicted value, or a classifier's label (a list for a model with "
            "several output columns of its own)."
        )
    )
    probability: float | None = Field(
        default=None, description="Binary classifiers: probability of the positive class."
    )
    probabilities: dict[str, float | None] | None = Field(
        default=None, description="Multiclass classifiers: probability of each class."
    )
    features: dict[str, Scalar | list[Scalar] | None] = Field(
        description="The feature values the model was given."
    )
    feature_timestamps: dict[str, datetime | None] = Field(
        description="Per feature view, the event time of the values read."
    )
    feature_age_seconds: dict[str, float | None] = Field(
        description="Per feature view, seconds between the event time and scoring."
    )
    stale_views: list[str] = Field(
        description="Views older than the configured maximum age (stale=flag only)."
    )


class PredictResponse(BaseModel):
    """Predictions with their lineage."""

    predictions: list[Prediction]
    model: ModelInfo
    feature_views: list[FeatureViewInfo]
    feature_view_versions: str = Field(
        description="view@version of each view, as the batch lineage column holds it."
    )
    contract_version: str | None = Field(description="Version of the data contract checked.")
    stale: bool = Field(description="Whether any prediction used stale features.")
    scored_at: datetime = Field(description="When the request was scored (UTC).")


class ErrorResponse(BaseModel):
    """What was wrong with a request."""

    error: str = Field(description="Kind of error.")
    message: str = Field(description="What was wrong and how to fix it.")
    detail: Any = Field(default=None, description="Structured detail (entities, views, checks).")
