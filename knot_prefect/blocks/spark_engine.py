"""The ``SparkEngine`` block: where a flow's Spark work runs, and with which settings."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prefect.blocks.fields import SecretDict
from pydantic import Field, field_validator

from knot_prefect.blocks.base import KnotBlock
from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MASTER_SCHEMES = ("local", "spark://", "sc://", "yarn", "k8s://", "databricks")
DATABRICKS = "databricks"


class SparkEngine(KnotBlock):
    """A Spark cluster to run on: its master URL, the application name and Spark conf.

    The master is ``local[N]`` (Spark inside the flow process's JVM, N executor
    threads), ``spark://HOST:PORT`` (a standalone cluster), ``yarn`` or ``k8s://...``,
    or a Spark Connect URL ``sc://HOST:PORT``; ``databricks`` submits the work as a
    Databricks job (prefect-databricks' ``DatabricksCredentials`` block named in
    ``databricks_credentials``, on ``databricks_cluster``). Conf values that are secrets (cloud
    keys, a Spark Connect token) go in ``secret_conf``: they reach Spark, never a log,
    repr or error.

    Examples:
        >>> engine = SparkEngine(master="local[2]", conf={"spark.ui.enabled": "false"})
        >>> engine.is_connect(), engine.settings()["spark.ui.enabled"]
        (False, 'false')
    """

    _block_type_name = "Spark Engine"
    _description = (
        "A Spark cluster that knot's flows run on: master URL (local[N], spark://, yarn, "
        "k8s:// or a Spark Connect sc:// URL), application name and Spark conf."
    )
    _code_example = """
```python
from knot_prefect import SparkEngine
from knot_prefect.flows import batch_inference_flow

spark_engine = SparkEngine.load("BLOCK_NAME")
with spark_engine.session() as spark:
    print(spark.version)
batch_inference_flow(spec="churn", spark="BLOCK_NAME")
```
"""

    master: str = "local[*]"
    """Master URL: local[N], spark://HOST:PORT, yarn, k8s://... or a Spark Connect URL
    sc://HOST:PORT (its token in secret_conf, key 'token')."""
    app_name: str = "knot-prefect"
    """Spark application name."""
    conf: dict[str, str] = Field(default_factory=dict)
    """Spark settings, e.g. {'spark.executor.memory': '4g'}."""
    secret_conf: SecretDict | None = None
    """Spark settings holding secrets (kept out of logs); 'token' is the Spark Connect token."""

    databricks_credentials: str | None = None
    """DatabricksCredentials block document of the workspace (master 'databricks')."""
    databricks_cluster: dict[str, Any] = Field(default_factory=dict)
    """The job's cluster: {'existing_cluster_id': ...} or {'new_cluster': {...}} as in
    Databricks' Jobs API."""
    databricks_python_file: str | None = None
    """Workspace or DBFS path of knot's databricks_scoring.py, the job's Python file."""
    databricks_package: str = "knot-prefect[spark]"
    """The PyPI requirement installed on the job's cluster."""
    databricks_poll_seconds: float = Field(default=10.0, gt=0)
    """Seconds between two checks of the Databricks run's state."""

    @field_validator("master")
    @classmethod
    def _check_master(cls, value: str) -> str:
        master = value.strip()
        if not master.startswith(MASTER_SCHEMES):
            raise ValueError(
                "master must be local[N], spark://HOST:PORT, yarn, k8s://... or "
                "sc://HOST:PORT"
            )
        if "token=" in master:
            raise ValueError(
                "master must not carry a token: put it in secret_conf under 'token'"
            )
        return master

    def is_connect(self) -> bool:
        """Whether the master is a Spark Connect server (``sc://``)."""
        return self.master.startswith("sc://")

    def is_databricks(self) -> bool:
        """Whether work is submitted as a Databricks job (master ``databricks``)."""
        return self.master == DATABRICKS

    def databricks_credentials_block(self) -> Any:
        """The ``DatabricksCredentials`` block named by ``databricks_credentials``."""
        try:
            from prefect_databricks import DatabricksCredentials
        except ModuleNotFoundError:
            raise ConfigurationError(
                "A Databricks SparkEngine needs prefect-databricks: pip install "
                "'knot-prefect[databricks]'.") from None
        if not self.databricks_credentials:
            raise ConfigurationError(
                "SparkEngine(master='databricks') needs databricks_credentials: the name "
                "of a DatabricksCredentials block document.")
        from knot_prefect.blocks.resolve import resolve_block

        return resolve_block(self.databricks_credentials, DatabricksCredentials,
                             parameter="databricks_credentials")

    def settings(self) -> dict[str, str]:
        """The Spark conf the session is built with (secrets excluded).

        A ``local`` master runs its Python workers with this process's interpreter
        (its packages, knot among them), unless ``spark.pyspark.python`` is set.
        """
        settings = dict(self.conf)
        if self.master.startswith("local"):
            settings.setdefault("spark.pyspark.python", sys.executable)
        return settings

    def _secret_settings(self) -> dict[str, str]:
        values = self.secret_conf.get_secret_value() if self.secret_conf else {}
        return {str(key): str(value) for key, value in values.items()}

    def builder(self) -> Any:
        """A ``SparkSession.Builder`` for this engine (secrets applied, nothing started)."""
        if self.is_databricks():
            raise ConfigurationError(
                "A SparkEngine with master 'databricks' submits Databricks jobs and starts "
                "no session here: use batch_inference_flow(spark=...), or a spark:// or "
                "sc:// master for a session.")
        try:
            from pyspark.sql import SparkSession
        except ModuleNotFoundError:
            raise ConfigurationError(
                "SparkEngine needs pyspark: pip install 'knot-prefect[spark]'."
            ) from None
        secrets = self._secret_settings()
        builder = SparkSession.builder.appName(self.app_name)
        if self.is_connect():
            token = secrets.pop("token", None)
            builder = builder.remote(self.master + (f"/;token={token}" if token else ""))
        else:
            builder = builder.master(self.master)
        for key, value in {**self.settings(), **secrets}.items():
            builder = builder.config(key, value)
        return builder

    def start(self) -> SparkSession:
        """Start (or join) this process's Spark session on the master.

        The session's Python workers run ``spark.pyspark.python`` (this process's
        interpreter on a ``local`` master): PySpark itself only reads the
        ``PYSPARK_PYTHON`` environment variable, which ``spark-submit`` sets from it.
        """
        spark = self.builder().getOrCreate()
        python = self.settings().get("spark.pyspark.python")
        if python and not self.is_connect():
            spark.sparkContext.pythonExec = python
        return spark  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def session(self) -> Iterator[SparkSession]:
        """The active Spark session for the ``with`` block.

        An already active session of this process is used as it is (and left
        running); otherwise one is started for the block and stopped after it.
        """
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is not None:
            yield active
            return
        spark = self.start()
        try:
            yield spark
        finally:
            spark.stop()

    def check_connection(self) -> str:
        """Start a session on the master and report Spark's version."""
        with self.session() as spark:
            return f"Spark {spark.version} on {self.master}"
