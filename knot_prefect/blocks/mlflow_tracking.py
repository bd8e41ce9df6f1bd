"""The ``MLflowTracking`` block: where runs and registered models live, and how to log in.

The block holds configuration only. Credentials are applied to the process for the
duration of a call (:meth:`MLflowTracking.session`) and removed afterwards, so they never
linger in the environment, in MLflow tags or in logs.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from knot_prefect.blocks.base import KnotBlock
from knot_prefect.blocks.fields import CredentialFreeUri
from knot_prefect.errors import ConfigurationError, ConnectionCheckError
from knot_prefect.settings import get_settings
from knot_prefect.urls import check_no_credentials, mask_url, mask_urls

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

T = TypeVar("T")

# Environment variables MLflow reads on every request; set only inside ``session()``.
_AUTH_VARIABLES = (
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)
_HTTP_VARIABLES = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")


class TrackingUnavailableError(ConnectionCheckError):
    """The MLflow tracking server could not be reached after the configured retries."""


def redact_uri(uri: str) -> str:
    """Mask any password or token in a URI so it is safe to show.

    Examples:
        >>> redact_uri("https://alice:s3cret@mlflow.example.com/path")
        'https://alice:***@mlflow.example.com/path'
        >>> redact_uri("sqlite:////tmp/mlflow.db")
        'sqlite:////tmp/mlflow.db'
    """
    return mask_url(uri)


class MLflowTracking(KnotBlock):
    """An MLflow tracking server and model registry, or the embedded SQLite store.

    Leave ``tracking_uri`` empty to use the embedded store in the knot home folder
    (``KNOT_HOME/mlflow``), which needs no server.

    Examples:
        The embedded store, ready without a server:

        >>> from knot_prefect.blocks.mlflow_tracking import MLflowTracking
        >>> tracking = MLflowTracking(experiment_name="churn")
        >>> tracking.resolved_tracking_uri().startswith("sqlite:///")
        True
        >>> "s3cret" in repr(MLflowTracking(token="s3cret"))
        False
    """

    _block_type_name = "MLflow Tracking"
    _description = (
        "An MLflow tracking server and model registry (or knot's embedded SQLite store) "
        "with optional token or user/password authentication."
    )
    _code_example = """
```python
from knot_prefect import MLflowTracking
from knot_prefect.tracking import tracked_run

tracking = MLflowTracking.load("BLOCK_NAME")
with tracked_run(tracking, run_name="train") as run:
    print(run.info.run_id)
```
"""

    tracking_uri: CredentialFreeUri = None
    """MLflow tracking URI, e.g. http://mlflow.internal:5000; leave empty for the embedded SQLite
    store in the knot home folder."""
    registry_uri: CredentialFreeUri = None
    """Model registry URI when it differs from the tracking URI."""
    experiment_name: str = "knot"
    """MLflow experiment that runs are logged to; created when missing."""
    artifact_location: CredentialFreeUri = None
    """Artifact location for experiments this block creates; empty uses the server's default (or
    the knot home folder for the embedded store)."""
    token: SecretStr | None = None
    """Bearer token sent to the tracking server (MLFLOW_TRACKING_TOKEN)."""
    username: str | None = None
    """User name for HTTP basic authentication to the tracking server."""
    password: SecretStr | None = None
    """Password for HTTP basic authentication to the tracking server."""
    default_tags: dict[str, str] = Field(default_factory=dict)
    """Tags added to every run started through this block."""
    connect_attempts: int = Field(default=3, ge=1)
    """How many times to try reaching the tracking server before failing."""
    retry_delay_seconds: float = Field(default=0.5, ge=0)
    """Seconds to wait between connection attempts (doubled each time)."""
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    """Timeout of each HTTP request to the tracking server, in seconds."""

    _secret_fields: ClassVar[tuple[str, ...]] = ("token", "password")

    # A URI typed with its password must not echo back in a validation error.
    model_config = ConfigDict(hide_input_in_errors=True)

    @field_validator("tracking_uri", "registry_uri", "artifact_location")
    @classmethod
    def _uri_without_credentials(cls, value: str | None, info: Any) -> str | None:
        if value is None:
            return None
        return check_no_credentials(value, str(info.field_name), "token (or username/password)")

    @model_validator(mode="after")
    def _one_kind_of_authentication(self) -> MLflowTracking:
        if self.token is not None and (self.username or self.password is not None):
            raise ValueError("MLflowTracking: set either token or username/password, not both.")
        if (self.username is None) != (self.password is None):
            raise ValueError(
                "MLflowTracking: basic authentication needs both username and password."
            )
        return self

    # -- where -----------------------------------------------------------------------
    def resolved_tracking_uri(self) -> str:
        """The tracking URI in use: the configured one or the embedded store's."""
        return self.tracking_uri or get_settings().mlflow_tracking_uri

    def resolved_registry_uri(self) -> str:
        """The registry URI in use: the configured one or the tracking URI."""
        return self.registry_uri or self.resolved_tracking_uri()

    def is_http(self) -> bool:
        """Whether the tracking URI points at a server (``http://`` or ``https://``)."""
        return self.resolved_tracking_uri().startswith(("http://", "https://"))

    def safe_uri(self) -> str:
        """The tracking URI without any embedded credentials, fit for messages."""
        return redact_uri(self.resolved_tracking_uri())

    def resolved_artifact_location(self) -> str | None:
        """Artifact location for new experiments, or None for the server's default."""
        if self.artifact_location:
            return self.artifact_location
        if self.tracking_uri is None:
            return get_settings().mlflow_artifact_root.as_uri()
        uri = self.resolved_tracking_uri()
        if uri.startswith("sqlite:///"):
            # MLflow would otherwise default to ./mlruns in whatever folder runs the flow.
            database = Path(uri.removeprefix("sqlite:///"))
            return (database.parent / "artifacts").absolute().as_uri()
        return None

    def run_page_url(self, experiment_id: str, run_id: str) -> str | None:
        """The MLflow UI page of a run, when the tracking URI is a server."""
        if not self.is_http():
            return None
        parts = urlsplit(self.resolved_tracking_uri())
        base = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])).rstrip("/")
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"

    # -- credentials -----------------------------------------------------------------
    def redact(self, text: str) -> str:
        """Replace every secret value of this block that occurs in ``text`` with ``***``."""
        secrets = [getattr(self, name) for name in self._secret_fields]
        values = [secret.get_secret_value() for secret in secrets if secret is not None]
        for value in sorted((v for v in values if v), key=len, reverse=True):
            text = text.replace(value, "***")
        # Server messages may echo a URL with somebody else's credentials.
        return mask_urls(text)

    def _session_environment(self) -> dict[str, str | None]:
        env: dict[str, str | None] = {}
        if self.token is not None:
            env = dict.fromkeys(_AUTH_VARIABLES)
            env["MLFLOW_TRACKING_TOKEN"] = self.token.get_secret_value()
        elif self.username is not None and self.password is not None:
            env = dict.fromkeys(_AUTH_VARIABLES)
            env["MLFLOW_TRACKING_USERNAME"] = self.username
            env["MLFLOW_TRACKING_PASSWORD"] = self.password.get_secret_value()
        # Without credentials on the block, whatever the environment provides is kept.
        env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(max(self.connect_attempts - 1, 0))
        env["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(max(self.request_timeout_seconds, 1)))
        return env

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Apply this block's credentials and HTTP limits for the duration of the block.

        The variables MLflow reads on each request (``MLFLOW_TRACKING_TOKEN`` or
        ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``) are set on entry and
        restored on exit. Sessions nest; the environment is process-wide, so sessions of
        blocks with different credentials should not overlap in concurrent threads.

        Examples:
            >>> import os
            >>> from pydantic import SecretStr
            >>> tracking = MLflowTracking(token=SecretStr("t0ken"))
            >>> with tracking.session():
            ...     os.environ["MLFLOW_TRACKING_TOKEN"] == "t0ken"
            True
            >>> "MLFLOW_TRACKING_TOKEN" in os.environ
            False
        """
        handle = _sessions.enter(self._session_environment())
        try:
            yield
        finally:
            _sessions.exit(handle)

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``function`` inside :meth:`session`."""
        with self.session():
            return function(*args, **kwargs)

    # -- clients ---------------------------------------------------------------------
    def get_client(self) -> MlflowClient:
        """An MLflow client for this store whose every call runs inside :meth:`session`.

        Returns:
            An object with the full :class:`mlflow.tracking.MlflowClient` interface.

        Examples:
            >>> tracking = MLflowTracking()
            >>> tracking.get_client().search_experiments()[0].name
            'Default'
        """
        from mlflow.tracking import MlflowClient

        client = MlflowClient(
            tracking_uri=self.resolved_tracking_uri(),
            registry_uri=self.resolved_registry_uri(),
        )
        return cast("MlflowClient", _SessionClient(client, self))

    def ensure_reachable(self) -> None:
        """Reach the tracking store, retrying a bounded number of times.

        Only :attr:`connect_attempts` requests are made, :attr:`retry_delay_seconds` apart
        (doubling), each bounded by :attr:`request_timeout_seconds`.

        Raises:
            TrackingUnavailableError: Naming the URI (never a secret) and the last error.
        """
        delay = self.retry_delay_seconds
        reason = ""
        with self.session():
            for attempt in range(1, self.connect_attempts + 1):
                reason = self._probe()
                if not reason or reason.startswith("HTTP 40"):
                    break  # Reached, or refused: retrying will not change the answer.
                if attempt < self.connect_attempts:
                    time.sleep(delay)
                    delay *= 2
        if not reason:
            return
        raise TrackingUnavailableError(
            f"MLflow tracking store at {self.safe_uri()} is unreachable after "
            f"{attempt} attempt(s): {self.redact(reason)[:300]}. Check that the server "
            "is running and that the MLflowTracking block's tracking_uri and credentials "
            "are right."
        )

    def _probe(self) -> str:
        """One request to the store; an empty string when it answered, else why not."""
        if not self.is_http():
            from mlflow.tracking import MlflowClient

            try:
                MlflowClient(self.resolved_tracking_uri()).search_experiments(max_results=1)
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}"
            return ""
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request

        try:
            response = http_request(
                get_default_host_creds(self.resolved_tracking_uri()),
                "/api/2.0/mlflow/experiments/search",
                "GET",
                max_retries=0,
                timeout=self.request_timeout_seconds,
                raise_on_status=False,
                params={"max_results": 1},
            )
        except Exception as exc:
            return f"{type(exc).__name__}: {str(exc).split(' failed with exception ')[-1]}"
        if response.status_code != 200:
            return f"HTTP {response.status_code} {response.reason}: {response.text[:200]}"
        return ""

    def get_or_create_experiment_id(self) -> str:
        """The id of :attr:`experiment_name`, creating the experiment when missing."""
        from mlflow.exceptions import MlflowException

        client = self.get_client()
        experiment = client.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                raise ConfigurationError(
                    f"MLflow experiment {self.experiment_name!r} at {self.safe_uri()} is "
                    "deleted; restore it in the MLflow UI or pick another experiment_name "
                    "on the MLflowTracking block."
                )
            return str(experiment.experiment_id)
        try:
            return str(
                client.create_experiment(
                    self.experiment_name, artifact_location=self.resolved_artifact_location()
                )
            )
        except MlflowException:
            # Another process created it between the lookup and the create.
            experiment = client.get_experiment_by_name(self.experiment_name)
            if experiment is None:
                raise
            return str(experiment.experiment_id)

    def check_connection(self) -> str:
        """Reach the tracking store and report the experiment count.

        Returns:
            A short detail such as ``"sqlite:///... (3 experiments)"``.
        """
        self.ensure_reachable()
        experiments = self.get_client().search_experiments(max_results=1000)
        return f"{self.safe_uri()} ({len(experiments)} experiments)"


class _SessionEnvironment:
    """The stack of open sessions; the newest one's variables are in the environment.

    The original values are saved when the first session opens and restored when the
    last one closes, so credentials never outlive the calls that need them.
    """

    _VARIABLES = (*_AUTH_VARIABLES, *_HTTP_VARIABLES)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stack: list[tuple[object, dict[str, str | None]]] = []
        self._saved: dict[str, str | None] = {}

    def enter(self, wanted: dict[str, str | None]) -> object:
        handle = object()
        with self._lock:
            if not self._stack:
                self._saved = {name: os.environ.get(name) for name in self._VARIABLES}
            self._stack.append((handle, wanted))
            self._apply()
        return handle

    def exit(self, handle: object) -> None:
        with self._lock:
            self._stack = [entry for entry in self._stack if entry[0] is not handle]
            self._apply()

    def _apply(self) -> None:
        values = dict(self._saved)
        if self._stack:
            values.update(self._stack[-1][1])
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_sessions = _SessionEnvironment()


class _SessionClient:
    """Wraps an ``MlflowClient`` so each method call runs inside the block's session."""

    def __init__(self, client: MlflowClient, block: MLflowTracking) -> None:
        self._client = client
        self._block = block

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._client, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._block.session():
                return value(*args, **kwargs)

        return call

    def __repr__(self) -> str:
        return f"<MlflowClient for {self._block.safe_uri()}>"
