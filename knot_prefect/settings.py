"""Settings for knot, read from the environment with the ``KNOT_`` prefix.

The knot home folder holds the embedded defaults that let every flow run on a laptop:
a DuckDB warehouse file, a local Feast repo and an MLflow store on SQLite.

Examples:
    >>> from knot_prefect.settings import KnotSettings
    >>> settings = KnotSettings(home="/tmp/knot-example")
    >>> settings.warehouse_path.name
    'warehouse.duckdb'
    >>> settings.mlflow_tracking_uri
    'sqlite:////tmp/knot-example/mlflow/mlflow.db'
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_LOGO_URL = (
    "https://raw.githubusercontent.com/knot-prefect/knot-prefect/main/knot_prefect/blocks/logo.png"
)


class KnotSettings(BaseSettings):
    """Where knot keeps its embedded defaults and how it behaves.

    Every field can be set with an environment variable, e.g. ``KNOT_HOME=/data/knot``.
    """

    model_config = SettingsConfigDict(env_prefix="KNOT_", extra="ignore")

    home: Path = Field(
        default=Path(".knot"),
        description="Folder holding the embedded warehouse, Feast repo and MLflow store.",
    )
    logo_url: str = Field(
        default=DEFAULT_LOGO_URL,
        description=(
            "URL of the square logo shown for knot blocks in the Prefect UI. Air-gapped "
            "servers point it at an internal copy of knot_prefect/blocks/logo.png."
        ),
    )
    worker_mmap_threshold: int = Field(
        default=32 * 1024 * 1024,
        ge=0,
        description=(
            "Bytes: the glibc mmap threshold knot sets on a Dask worker before it scores "
            "there, when Dask's nanny froze it (see docs/performance.md, 'Dask scoring'). "
            "0 leaves the worker's allocator alone."
        ),
    )
    require_services: bool = Field(
        default=False,
        description="In the test suite: fail, instead of skip, when a real service cannot start.",
    )

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def warehouse_path(self) -> Path:
        """The embedded DuckDB warehouse file."""
        return self.home / "warehouse.duckdb"

    @property
    def feast_repo_path(self) -> Path:
        """The embedded Feast repository (SQLite online store, file offline store)."""
        return self.home / "feast"

    @property
    def mlflow_dir(self) -> Path:
        """Folder of the embedded MLflow store and its artifacts."""
        return self.home / "mlflow"

    @property
    def mlflow_tracking_uri(self) -> str:
        """The embedded MLflow tracking and registry store (SQLite)."""
        return f"sqlite:///{(self.mlflow_dir / 'mlflow.db').absolute()}"

    @property
    def mlflow_artifact_root(self) -> Path:
        """Where the embedded MLflow store keeps artifacts."""
        return (self.mlflow_dir / "artifacts").absolute()


def get_settings() -> KnotSettings:
    """Read the settings afresh from the environment.

    Returns:
        The current settings; cheap enough to call whenever a value is needed.
    """
    return KnotSettings()
