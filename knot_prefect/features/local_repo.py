"""The embedded Feast repo: SQLite online store and file offline store, no server."""

from __future__ import annotations

import re
from pathlib import Path

LOCAL_FEATURE_STORE_YAML = """\
project: {project}
provider: local
registry: data/registry.db
online_store:
  type: sqlite
  path: data/online_store.db
offline_store:
  type: file
entity_key_serialization_version: 3
"""

_PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")


def write_local_feature_store_yaml(path: str | Path, project: str) -> Path:
    """Write a ``feature_store.yaml`` for a local embedded repo into a folder.

    The registry and the SQLite online store live under ``data/`` in the folder; the
    file offline store reads the Parquet files named by each ``FileSource``. Writing
    the same content again changes nothing.

    Args:
        path: The repo folder (created if missing).
        project: The Feast project name (letters, digits and underscores).

    Returns:
        The path of the written ``feature_store.yaml``.

    Raises:
        ValueError: For a project name Feast would refuse.

    Examples:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> written = write_local_feature_store_yaml(folder, "churn")
        >>> print(written.read_text().splitlines()[0])
        project: churn
    """
    if not _PROJECT_NAME.match(project):
        raise ValueError(
            f"Feast project name {project!r} is invalid: use letters, digits and "
            "underscores, starting with a letter or digit."
        )
    folder = Path(path).expanduser()
    (folder / "data").mkdir(parents=True, exist_ok=True)
    target = folder / "feature_store.yaml"
    content = LOCAL_FEATURE_STORE_YAML.format(project=project)
    if not target.is_file() or target.read_text() != content:
        target.write_text(content)
    return target
