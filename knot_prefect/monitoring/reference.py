"""Keep a model version's reference profile in MLflow, beside the model.

The profile is a JSON artifact of the model version's run (``knot/reference_profile.json``)
and the model version is tagged ``knot.reference_profile`` with its location, so any
MLflow user finds it without knot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking

PROFILE_ARTIFACT = "knot/reference_profile.json"
PROFILE_TAG = "knot.reference_profile"


def save_reference_profile(
    tracking: MLflowTracking, model_name: str, version: int | str, profile: dict[str, Any]
) -> str:
    """Store ``profile`` with a registered model version.

    Returns:
        The artifact URI of the stored profile.
    """
    client = tracking.get_client()
    model_version = client.get_model_version(model_name, str(version))
    run_id = model_version.run_id
    if not run_id:
        raise ConfigurationError(
            f"Model {model_name} version {version} has no source run to hold its "
            "reference profile; register models logged inside an MLflow run."
        )
    client.log_dict(run_id, profile, PROFILE_ARTIFACT)
    location = f"runs:/{run_id}/{PROFILE_ARTIFACT}"
    client.set_model_version_tag(model_name, str(version), PROFILE_TAG, location)
    return location


def load_reference_profile(
    tracking: MLflowTracking, model_name: str, version: int | str
) -> dict[str, Any]:
    """Read the reference profile stored with a model version.

    Raises:
        ConfigurationError: When the version has no profile (names the version and how
            to create one).
    """
    import json
    import tempfile
    from pathlib import Path

    client = tracking.get_client()
    model_version = client.get_model_version(model_name, str(version))
    if PROFILE_TAG not in (model_version.tags or {}) or not model_version.run_id:
        raise ConfigurationError(
            f"Model {model_name} version {version} has no reference profile "
            f"(tag {PROFILE_TAG!r}); train it with training_flow, or store one with "
            "save_reference_profile()."
        )
    with tempfile.TemporaryDirectory() as folder:
        path = client.download_artifacts(model_version.run_id, PROFILE_ARTIFACT, folder)
        profile: dict[str, Any] = json.loads(Path(path).read_text())
    return profile
