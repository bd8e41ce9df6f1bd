"""A standalone Spark cluster (one master, one worker) from the pyspark distribution."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.services import ServiceUnavailable, free_port, managed_process


def _spark_home() -> Path:
    try:
        import pyspark
    except ModuleNotFoundError as exc:
        raise ServiceUnavailable("Spark standalone: pip install 'knot-prefect[spark]'") from exc
    home = Path(pyspark.__file__).parent
    if not (home / "bin" / "spark-class").exists():
        raise ServiceUnavailable(f"Spark standalone: no bin/spark-class in {home}.")
    if shutil.which("java") is None and "JAVA_HOME" not in os.environ:
        raise ServiceUnavailable("Spark standalone needs Java 17: apt-get install openjdk-17-jre")
    return home


def _alive_workers(web_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/json/", timeout=2) as reply:
            return int(json.load(reply).get("aliveworkers", 0))
    except (OSError, ValueError):
        return 0


@contextlib.contextmanager
def start_spark_standalone(cores: int = 2, memory: str = "2g") -> Iterator[str]:
    """A master and one worker on loopback, free ports; yields ``spark://127.0.0.1:PORT``.

    Ready once the master reports the worker alive (its JSON status page); both
    processes and their folders are removed on exit.
    """
    home = _spark_home()
    folder = Path(tempfile.mkdtemp(prefix="knot-spark-standalone-"))
    env = {"SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_LOG_DIR": str(folder / "logs"), "SPARK_NO_DAEMONIZE": "1"}
    spark_class = str(home / "bin" / "spark-class")
    port, web_port = free_port(), free_port()
    master = f"spark://127.0.0.1:{port}"
    try:
        with managed_process(
            "spark-master",
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(port), "--webui-port", str(web_port)],
            ready=lambda: _answers(web_port),
            timeout=120, env=env, cwd=str(folder),
        ), managed_process(
            "spark-worker",
            [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
             "--webui-port", str(free_port()), "--cores", str(cores), "--memory", memory,
             "--work-dir", str(folder / "work"), master],
            ready=lambda: _alive_workers(web_port) >= 1,
            timeout=120, env=env, cwd=str(folder),
        ):
            yield master
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _answers(web_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/json/", timeout=2):
            return True
    except OSError:
        return False
