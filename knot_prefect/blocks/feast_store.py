"""The ``FeastFeatureStore`` block: where a Feast repo lives and how to open it.

The repo stays a plain Feast repo that the team keeps owning. The block finds it (a
local folder, a folder in an S3 or GCS bucket, or inline ``feature_store.yaml`` text),
injects secrets at run time and returns a real ``feast.FeatureStore``.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect.types import SecretDict
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, field_validator, model_validator

from knot_prefect.blocks.base import KnotBlock
from knot_prefect.blocks.optional import optional_block
from knot_prefect.errors import ConfigurationError
from knot_prefect.settings import get_settings

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.repo_config import RepoConfig
    from prefect_aws.s3 import S3Bucket
    from prefect_gcp.cloud_storage import GcsBucket
else:  # the feast extra alone has neither integration: see blocks/optional.py
    S3Bucket = optional_block("prefect_aws.s3", "S3Bucket", "aws")
    GcsBucket = optional_block("prefect_gcp.cloud_storage", "GcsBucket", "gcp")

logger = logging.getLogger(__name__)

FEATURE_STORE_YAML = "feature_store.yaml"
ONLINE_STORE_PASSWORD_REF = "KNOT_ONLINE_STORE_PASSWORD"
OFFLINE_STORE_PASSWORD_REF = "KNOT_OFFLINE_STORE_PASSWORD"


class _StoreCache:
    """The opened store of one block instance.

    Copies of the block share it (the settings key decides whether it is still valid)
    and a pickled block starts empty: a ``feast.FeatureStore`` holds connections.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.store: Any = None
        self.key: tuple[Any, ...] | None = None

    def __copy__(self) -> _StoreCache:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _StoreCache:
        return self

    def __reduce__(self) -> tuple[type[_StoreCache], tuple[()]]:
        return (_StoreCache, ())


class FeastFeatureStore(KnotBlock):
    """A Feast feature repo: a local folder, a bucket folder, or inline YAML.

    Secrets are never written into the repo. Reference them in ``feature_store.yaml``
    as ``${KNOT_ONLINE_STORE_PASSWORD}``, ``${KNOT_OFFLINE_STORE_PASSWORD}`` or
    ``${NAME}`` for a key of ``secrets``; they are substituted in memory when the
    store is opened.

    Examples:
        Open the embedded demo repo and list its feature views:

        ```python
        from knot_prefect import FeastFeatureStore

        features = FeastFeatureStore(repo_path=".knot/feast")
        store = features.get_store()
        print([view.name for view in store.list_feature_views()])
        ```
    """

    _block_type_name = "Feast Feature Store"
    _block_type_slug = "knot-feast-feature-store"
    _description = (
        "A Feast feature repo (local folder, S3/GCS folder or inline feature_store.yaml) "
        "with its online and offline store secrets, opened as a feast.FeatureStore."
    )
    _code_example = """
    ```python
    from knot_prefect import FeastFeatureStore

    feast_store = FeastFeatureStore.load("BLOCK_NAME")
    store = feast_store.get_store()  # a feast.FeatureStore
    ```
    """

    repo_path: str | None = None
    """Local folder of the Feast repo (definitions and, unless feature_store_yaml is set,
    feature_store.yaml)."""
    s3_bucket: S3Bucket | None = None
    """S3 bucket block holding the repo; the folder is synced to a local cache."""
    gcs_bucket: GcsBucket | None = None
    """GCS bucket block holding the repo; the folder is synced to a local cache."""
    bucket_folder: str = ""
    """Folder of the repo inside the S3 or GCS bucket (empty for the root)."""
    feature_store_yaml: str | None = Field(default=None, json_schema_extra={"format": "textarea"})
    """Inline feature_store.yaml text; used instead of the repo's own file, or alone for a store
    whose definitions live in a shared registry."""
    online_store_password: SecretStr | None = None
    """Online store password, referenced as ${KNOT_ONLINE_STORE_PASSWORD}."""
    offline_store_password: SecretStr | None = None
    """Offline store password, referenced as ${KNOT_OFFLINE_STORE_PASSWORD}."""
    secrets: SecretDict = Field(default_factory=lambda: SecretDict({}))
    """Further secret values by name, each referenced as ${NAME} in the YAML."""
    cache_dir: str | None = None
    """Folder for synced bucket repos and inline configs; defaults to feast-cache in the knot
    home."""

    _cache: _StoreCache = PrivateAttr(default_factory=_StoreCache)

    # YAML typed with a password must not echo back in a validation error.
    model_config = ConfigDict(hide_input_in_errors=True)

    @field_validator("feature_store_yaml")
    @classmethod
    def _yaml_parses_without_credentials(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return value
        import yaml

        from knot_prefect.urls import credentials_in_settings

        try:
            settings = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise ValueError(f"feature_store_yaml does not parse{line}: {problem}.") from None
        if not isinstance(settings, dict):
            raise ValueError("feature_store_yaml must be a mapping (Feast's feature_store.yaml).")
        found = credentials_in_settings(settings)
        if found:
            raise ValueError(
                f"feature_store_yaml holds {' and '.join(found)}: put the value in "
                "online_store_password, offline_store_password or secrets, and reference "
                "it as ${KNOT_ONLINE_STORE_PASSWORD}, ${KNOT_OFFLINE_STORE_PASSWORD} or "
                "${NAME}."
            )
        return value

    @model_validator(mode="after")
    def _one_repo_source(self) -> FeastFeatureStore:
        sources = [
            name
            for name in ("repo_path", "s3_bucket", "gcs_bucket")
            if getattr(self, name) is not None
        ]
        if len(sources) > 1:
            raise ValueError(
                f"FeastFeatureStore: set only one of repo_path, s3_bucket, gcs_bucket "
                f"(got {', '.join(sources)})."
            )
        if not sources and not self.feature_store_yaml:
            raise ValueError(
                "FeastFeatureStore needs a repo: set repo_path, s3_bucket or gcs_bucket, "
                "or feature_store_yaml for a store whose registry is shared."
            )
        return self

    # -- configuration -------------------------------------------------------------
    def secret_values(self) -> dict[str, str]:
        """The secret values by reference name (for substitution; never log them)."""
        values = {str(name): str(value) for name, value in self.secrets.get_secret_value().items()}
        if self.online_store_password is not None:
            values[ONLINE_STORE_PASSWORD_REF] = self.online_store_password.get_secret_value()
        if self.offline_store_password is not None:
            values[OFFLINE_STORE_PASSWORD_REF] = self.offline_store_password.get_secret_value()
        return values

    def _location_key(self) -> str:
        if self.s3_bucket is not None:
            where = f"s3://{self.s3_bucket.bucket_name}/{self.s3_bucket.bucket_folder}"
        elif self.gcs_bucket is not None:
            where = f"gs://{self.gcs_bucket.bucket}/{self.gcs_bucket.bucket_folder}"
        else:
            where = f"inline:{self.feature_store_yaml}"
        digest = hashlib.sha256(f"{where}/{self.bucket_folder}".encode()).hexdigest()
        return digest[:16]

    def _cache_root(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return get_settings().home / "feast-cache"

    def sync(self) -> Path:
        """Download the repo folder from the bucket into the local cache, replacing it.

        Returns:
            The local copy of the repo.

        Raises:
            ConfigurationError: When the block has no bucket or the folder is empty.
        """
        bucket = self.s3_bucket or self.gcs_bucket
        if bucket is None:
            raise ConfigurationError("FeastFeatureStore.sync needs s3_bucket or gcs_bucket.")
        target = self._cache_root() / self._location_key()
        target.parent.mkdir(parents=True, exist_ok=True)
        # Download next to the target, then swap: a failed download keeps the old copy.
        staging = Path(tempfile.mkdtemp(prefix=".sync-", dir=target.parent))
        try:
            bucket.download_folder_to_path(self.bucket_folder, staging)
            if not any(staging.iterdir()):
                raise ConfigurationError(
                    f"FeastFeatureStore: the bucket folder {self.bucket_folder!r} is empty "
                    "or missing; upload the Feast repo there or fix bucket_folder."
                )
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        logger.info("Synced the Feast repo from the bucket to %s", target)
        return target

    def repo_dir(self, sync: bool = False) -> Path:
        """The local folder of the repo (synced from a bucket on first use).

        Args:
            sync: Download again even when a cached copy exists.

        Returns:
            The folder; relative paths in ``feature_store.yaml`` resolve against it.
        """
        if self.repo_path is not None:
            return Path(self.repo_path).expanduser().resolve()
        if self.s3_bucket is not None or self.gcs_bucket is not None:
            cached = self._cache_root() / self._location_key()
            if sync or not cached.is_dir():
                return self.sync()
            return cached
        folder = self._cache_root() / self._location_key()
        folder.mkdir(parents=True, exist_ok=True)
        return folder.resolve()

    def _yaml_text(self, repo: Path) -> tuple[str, str]:
        if self.feature_store_yaml:
            return self.feature_store_yaml, "FeastFeatureStore.feature_store_yaml"
        path = repo / FEATURE_STORE_YAML
        if not path.is_file():
            raise ConfigurationError(
                f"No {FEATURE_STORE_YAML} in the Feast repo {repo}: add one, or set the "
                "block's feature_store_yaml field."
            )
        return path.read_text(), str(path)

    def repo_config(self, sync: bool = False) -> RepoConfig:
        """Build the Feast ``RepoConfig``, with secrets substituted in memory.

        Raises:
            RepoLoadError: When the YAML does not parse or validate (file and line).
        """
        from knot_prefect.blocks.feast_config import load_repo_config

        repo = self.repo_dir(sync=sync)
        text, source = self._yaml_text(repo)
        return load_repo_config(text, source, repo, self.secret_values())

    def get_store(self, refresh: bool = False) -> FeatureStore:
        """Open the repo as a ``feast.FeatureStore`` (cached on this block instance).

        Args:
            refresh: Re-sync a bucket repo and rebuild the store.

        Returns:
            A real ``feast.FeatureStore``; the same object on every call while the
            block's settings are unchanged.
        """
        from feast import FeatureStore

        key = self._settings_key()
        cache = self._cache
        with cache.lock:
            if cache.store is None or refresh or key != cache.key:
                config = self.repo_config(sync=refresh)
                cache.store = FeatureStore(repo_path=str(config.repo_path), config=config)
                cache.key = key
            return cache.store

    def _settings_key(self) -> tuple[Any, ...]:
        # Compared on every get_store() call, so kept cheap (no full model dump): the
        # serving path calls it once per online lookup. It lives only in memory.
        buckets = tuple(
            bucket.model_dump_json() if bucket is not None else None
            for bucket in (self.s3_bucket, self.gcs_bucket)
        )
        return (
            self.repo_path,
            self.bucket_folder,
            self.feature_store_yaml,
            self.cache_dir,
            tuple(sorted(self.secret_values().items())),
            buckets,
        )

    def check_connection(self) -> str:
        """Open the store and read its registry.

        Returns:
            The project, number of feature views and the store types.
        """
        from knot_prefect.blocks.feast_config import redact

        try:
            store = self.get_store()
            store.refresh_registry()
            views = store.list_feature_views()
        except Exception as exc:
            # Errors from store clients may echo connection strings holding secrets.
            raise ConnectionError(redact(str(exc), self.secret_values())) from None
        return (
            f"project {store.project}: {len(views)} feature view(s), online store "
            f"{store.config.online_store.type}, offline store {store.config.offline_store.type}"
        )
