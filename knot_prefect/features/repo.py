"""Load the Feast object definitions of a repo folder, as ``feast apply`` does.

Each definitions file is imported under its module name relative to the repo folder
(``features.py`` -> ``features``), as Feast's CLI does, so files that import each
other share objects. The repo folder is on ``sys.path`` only while loading, and the
repo's modules leave ``sys.modules`` afterwards (same-named modules from elsewhere are
put back): two repos with a ``features.py`` each never see each other's objects, and
the process's working directory is never changed.
"""

from __future__ import annotations

import importlib
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knot_prefect.features.errors import RepoLoadError

if TYPE_CHECKING:
    from feast.repo_contents import RepoContents

_LOAD_LOCK = threading.Lock()


def _failure_location(exc: BaseException, repo: Path, default: Path) -> tuple[Path, int | None]:
    if isinstance(exc, SyntaxError) and exc.filename:
        return Path(exc.filename), exc.lineno
    location: tuple[Path, int | None] = (default, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename)
        if path.is_relative_to(repo):
            location = (path, frame.lineno)
    return location


def _module_name(path: Path, repo: Path) -> str:
    return ".".join(path.relative_to(repo).with_suffix("").parts)


def _is_repo_module(module: Any, repo: Path) -> bool:
    file = getattr(module, "__file__", None)
    return isinstance(file, str) and Path(file).resolve().is_relative_to(repo)


def load_repo_contents(repo_path: Path, project: str) -> RepoContents:
    """Collect the Feast objects defined in a repo's Python files.

    Args:
        repo_path: The repo folder (honours ``.feastignore``).
        project: The project name from ``feature_store.yaml``, used when the repo
            defines no ``Project`` object.

    Returns:
        The repo's contents, ready for ``FeatureStore.plan``.

    Raises:
        RepoLoadError: When a file fails to import, naming the file and line.
    """
    from feast.repo_operations import get_repo_files

    repo = repo_path.resolve()
    files = get_repo_files(repo)
    modules = []
    with _LOAD_LOCK:
        names = {_module_name(path, repo) for path in files}
        for name in list(names):
            parts = name.split(".")
            names.update(".".join(parts[:i]) for i in range(1, len(parts)))
        shadowed = {name: sys.modules.pop(name) for name in names if name in sys.modules}
        before = set(sys.modules)
        sys.path.insert(0, str(repo))
        try:
            for path in files:
                try:
                    modules.append(importlib.import_module(_module_name(path, repo)))
                except Exception as exc:
                    file, line = _failure_location(exc, repo, path)
                    where = f"{file}, line {line}" if line else str(file)
                    raise RepoLoadError(
                        f"Feast repo does not load: {where}: {type(exc).__name__}: {exc}",
                        str(file),
                        line,
                    ) from exc
        finally:
            sys.path.remove(str(repo))
            for name in set(sys.modules) - before:
                if name in names or _is_repo_module(sys.modules[name], repo):
                    del sys.modules[name]
            sys.modules.update(shadowed)
    return collect_objects(modules, project)


def collect_objects(modules: Sequence[object], project: str) -> RepoContents:
    """Gather the distinct Feast objects defined at the top level of ``modules``."""
    from feast.batch_feature_view import BatchFeatureView
    from feast.data_source import DataSource
    from feast.entity import Entity
    from feast.feature_service import FeatureService
    from feast.feature_view import DUMMY_ENTITY, FeatureView
    from feast.labeling.label_view import LabelView
    from feast.on_demand_feature_view import OnDemandFeatureView
    from feast.permissions.permission import Permission
    from feast.project import Project
    from feast.repo_contents import RepoContents
    from feast.stream_feature_view import StreamFeatureView

    contents = RepoContents(
        projects=[],
        data_sources=[],
        entities=[],
        feature_views=[],
        feature_services=[],
        on_demand_feature_views=[],
        stream_feature_views=[],
        label_views=[],
        permissions=[],
    )

    def add(items: list, obj: object) -> None:
        # Identity, not equality: the same object imported twice counts once, while two
        # equal definitions are both kept (and Feast reports the duplicate).
        if not any(obj is item for item in items):
            items.append(obj)

    for module in modules:
        for attribute in dir(module):
            obj = getattr(module, attribute)
            if isinstance(obj, StreamFeatureView):
                add(contents.stream_feature_views, obj)
            elif isinstance(obj, FeatureView | BatchFeatureView):
                add(contents.feature_views, obj)
            elif isinstance(obj, OnDemandFeatureView):
                add(contents.on_demand_feature_views, obj)
            elif isinstance(obj, Entity):
                add(contents.entities, obj)
            elif isinstance(obj, FeatureService):
                add(contents.feature_services, obj)
            elif isinstance(obj, DataSource):
                add(contents.data_sources, obj)
            elif isinstance(obj, LabelView):
                add(contents.label_views, obj)
                if obj.source is not None:
                    add(contents.data_sources, obj.source)
            elif isinstance(obj, Permission):
                add(contents.permissions, obj)
            elif isinstance(obj, Project):
                add(contents.projects, obj)
            else:
                continue
            for source in _sources_of(obj):
                add(contents.data_sources, source)
    if not contents.projects:
        contents.projects.append(Project(name=project, description=""))
    contents.entities.append(DUMMY_ENTITY)
    return contents


def _sources_of(obj: object) -> list[object]:
    sources = []
    for attribute in ("batch_source", "stream_source"):
        source = getattr(obj, attribute, None)
        if source is not None:
            sources.append(source)
            nested = getattr(source, "batch_source", None)
            if nested is not None:
                sources.append(nested)
    return sources
