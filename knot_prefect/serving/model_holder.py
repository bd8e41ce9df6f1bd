"""The model behind an alias, followed while the service runs.

A background thread asks the registry where the alias points every ``refresh``
seconds. When it moves, the new version is loaded in that thread, off the request
path, and replaces the old one in a single assignment: a request takes the current
model once when it starts and finishes with it, whatever happens meanwhile. A version
that fails to load is logged and the old model keeps serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from knot_prefect.errors import ConfigurationError
from knot_prefect.serving.errors import ModelNotReadyError

if TYPE_CHECKING:
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.serving.features import FeaturePlan

logger = logging.getLogger("knot_prefect.serving")


@dataclass(frozen=True)
class ServedModel:
    """One loaded model version and the features it is fed.

    Attributes:
        name: Registered model name.
        alias: The alias followed.
        version: The version the alias pointed at when this was loaded.
        model: The pyfunc model.
        inputs: The model's input names, in signature order.
        plan: The online features read for it.
        loaded_at: When it was loaded (UTC).
    """

    name: str
    alias: str
    version: int
    model: Any
    inputs: tuple[str, ...]
    plan: FeaturePlan
    loaded_at: datetime

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``: the pinned version, not the moving alias."""
        return f"models:/{self.name}/{self.version}"


class ModelHolder:
    """Holds the model an alias points at and follows the alias in the background.

    Args:
        name: Registered model name.
        alias: Alias to follow.
        tracking: Where the registry is.
        plan_for: Builds the feature plan of a model from its input names.
        refresh: Seconds between alias checks.
    """

    def __init__(
        self,
        name: str,
        alias: str,
        tracking: MLflowTracking,
        plan_for: Callable[[list[str]], FeaturePlan],
        refresh: float = 30.0,
    ) -> None:
        self.name = name
        self.alias = alias
        self.tracking = tracking
        self.refresh_seconds = refresh
        self._plan_for = plan_for
        self._current: ServedModel | None = None
        self._update_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.last_checked: datetime | None = None

    @property
    def current(self) -> ServedModel:
        """The model serving now.

        Raises:
            ModelNotReadyError: Before the first successful load.
        """
        served = self._current
        if served is None:
            raise ModelNotReadyError(
                f"No model loaded yet for {self.name}@{self.alias}"
                + (f": {self.last_error}" if self.last_error else ".")
            )
        return served

    @property
    def ready(self) -> bool:
        """Whether a model is loaded."""
        return self._current is not None

    def resolve(self) -> int:
        """The version the alias points at now.

        Raises:
            ConfigurationError: When the model or the alias does not exist (naming them).
        """
        from mlflow.exceptions import MlflowException

        client = self.tracking.get_client()
        try:
            version = client.get_model_version_by_alias(self.name, self.alias)
        except MlflowException as exc:
            raise ConfigurationError(
                f"Cannot resolve {self.name}@{self.alias} in the registry at "
                f"{self.tracking.safe_uri()}: {self.tracking.redact(exc.message)} Register "
                "the model and set the alias (knot's promote task) first."
            ) from None
        return int(version.version)

    def load(self, version: int) -> ServedModel:
        """Load ``version`` and plan its features; does not make it current."""
        import mlflow

        from knot_prefect.tracking.fluent import fluent_store
        from knot_prefect.tracking.scoring import feature_names_of

        with self.tracking.session(), fluent_store(self.tracking):
            model = mlflow.pyfunc.load_model(f"models:/{self.name}/{version}")
        inputs = feature_names_of(model)
        if not inputs:
            raise ConfigurationError(
                f"{self.name} version {version} has no input signature, so its features "
                "cannot be looked up: log it with a signature (mlflow.models.infer_signature)."
            )
        plan = self._plan_for(inputs)
        previous = self._current
        if previous is not None and plan.join_keys != previous.plan.join_keys:
            raise ConfigurationError(
                f"{self.name} version {version} needs the entity keys "
                f"{[key.name for key in plan.join_keys]}, but this service answers requests "
                f"keyed by {[key.name for key in previous.plan.join_keys]}; restart the "
                "service to serve it."
            )
        return ServedModel(
            name=self.name,
            alias=self.alias,
            version=version,
            model=model,
            inputs=tuple(inputs),
            plan=plan,
            loaded_at=datetime.now(UTC),
        )

    def refresh(self) -> bool:
        """Check the alias once; load and switch to a new version if it moved.

        Returns:
            Whether the serving model changed.

        Raises:
            Exception: Only before the first model is loaded; afterwards failures are
                logged and the old model keeps serving.
        """
        with self._update_lock:
            try:
                version = self.resolve()
                self.last_checked = datetime.now(UTC)
                current = self._current
                if current is not None and current.version == version:
                    return False
                served = self.load(version)
            except Exception as exc:
                self.last_error = self.tracking.redact(f"{type(exc).__name__}: {exc}")
                if self._current is None:
                    raise
                logger.error(
                    "Keeping %s version %d: loading the alias's new target failed: %s",
                    self.name, self._current.version, self.last_error,
                    extra={"event": "model_load_failed", "model": self.name,
                           "alias": self.alias, "serving_version": self._current.version},
                )
                return False
            previous = self._current
            self._current = served  # one assignment: requests see the old or the new model
            self.last_error = None
        logger.info(
            "Serving %s@%s version %d (was %s)", self.name, self.alias, served.version,
            previous.version if previous else "none",
            extra={"event": "model_switched", "model": self.name, "alias": self.alias,
                   "version": served.version,
                   "previous_version": previous.version if previous else None},
        )
        return True

    def start(self) -> None:
        """Follow the alias in a daemon thread (the first model must be loaded already)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, name="knot-alias-follower",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following the alias."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _follow(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.refresh()
            except Exception:  # refresh only raises before the first load
                logger.exception("Checking %s@%s failed", self.name, self.alias)
