"""Turn ``feature_store.yaml`` text into a Feast ``RepoConfig`` with secrets injected.

Secrets are substituted for ``${NAME}`` references after the YAML is parsed, in memory:
the values never reach a file, the process environment or an error message, and a
password holding YAML-special characters (``#``, ``:``) cannot break the document.
References to names that are not secrets fall back to the environment, as Feast's own
loader does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    from feast.repo_config import RepoConfig

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
MASK = "**********"


class RepoLoadError(ConfigurationError):
    """A Feast repo (``feature_store.yaml`` or a definitions file) does not load.

    Attributes:
        path: The file that failed.
        line: The 1-based line of the failure, where known.
    """

    def __init__(self, message: str, path: str, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


def substitute_references(value: Any, secrets: Mapping[str, str]) -> Any:
    """Replace ``${NAME}`` (and ``$NAME``) in every string of a parsed YAML document.

    Args:
        value: A parsed YAML value (dicts, lists and scalars).
        secrets: Secret values by name; they win over environment variables.

    Returns:
        A copy with references resolved; unknown names are left as written.

    Examples:
        >>> substitute_references({"password": "${PW}", "port": 1}, {"PW": "s3cr#t"})
        {'password': 's3cr#t', 'port': 1}
    """
    if isinstance(value, dict):
        return {key: substitute_references(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute_references(item, secrets) for item in value]
    if isinstance(value, str) and "$" in value:

        def resolve(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            if name in secrets:
                return secrets[name]
            return os.environ.get(name, match.group(0))

        return _REFERENCE.sub(resolve, value)
    return value


def redact(text: str, secrets: Mapping[str, str]) -> str:
    """Mask every secret value that occurs in ``text``.

    Examples:
        >>> redact("auth failed for password=hunter2", {"PW": "hunter2"})
        'auth failed for password=**********'
    """
    for secret in sorted(secrets.values(), key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text


def _line_of_key(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*:", re.MULTILINE)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _section_of_line(text: str, line: int | None) -> str | None:
    """The top-level key enclosing an indented line (e.g. ``offline_store``)."""
    if line is None:
        return None
    lines = text.splitlines()
    if not lines[line - 1][:1].isspace():
        return None
    for previous in reversed(lines[: line - 1]):
        if previous and not previous[:1].isspace() and ":" in previous:
            return previous.split(":", 1)[0].strip()
    return None


def load_repo_config(
    yaml_text: str,
    source: str,
    repo_path: Path,
    secrets: Mapping[str, str] | None = None,
) -> RepoConfig:
    """Parse and validate ``feature_store.yaml`` text into a Feast ``RepoConfig``.

    Args:
        yaml_text: The content of ``feature_store.yaml``.
        source: Where the text came from (a path or a block field), for errors.
        repo_path: The repo folder; relative paths in the config resolve against it.
        secrets: Values for ``${NAME}`` references.

    Returns:
        A validated ``RepoConfig`` whose online, offline and registry settings were built.

    Raises:
        RepoLoadError: For YAML syntax errors or invalid settings, naming the file,
            the line and the setting (never a secret value).
    """
    from feast.repo_config import RepoConfig

    secrets = dict(secrets or {})
    try:
        raw = yaml.safe_load(yaml_text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise RepoLoadError(
            f"{source}, line {line}: invalid YAML ({exc.problem}). Fix the syntax of "
            "feature_store.yaml.",
            source,
            line,
        ) from None
    if not isinstance(raw, dict):
        raise RepoLoadError(
            f"{source}: feature_store.yaml must be a mapping with at least 'project', "
            "'provider' and 'registry' keys.",
            source,
            1,
        )
    raw = substitute_references(raw, secrets)
    try:
        config = RepoConfig(**raw)
        config.repo_path = repo_path
        # These are built lazily by Feast; build them now so errors surface here.
        _ = config.registry, config.online_store, config.offline_store
    except Exception as exc:
        raise _config_error(exc, yaml_text, source, secrets) from None
    return config


def _config_error(
    exc: Exception, yaml_text: str, source: str, secrets: Mapping[str, str]
) -> RepoLoadError:
    from pydantic import ValidationError

    validation = exc if isinstance(exc, ValidationError) else exc.__cause__
    if not isinstance(validation, ValidationError):
        validation = getattr(exc, "__context__", None)
    if isinstance(validation, ValidationError):
        # Only locations and messages: pydantic's default text repeats input values,
        # which may be secrets.
        problems = []
        line = None
        for error in validation.errors():
            location = ".".join(str(part) for part in error["loc"] if part != "__root__")
            error_line = _line_of_key(yaml_text, str(error["loc"][0])) if error["loc"] else None
            section = _section_of_line(yaml_text, error_line)
            if section and not location.startswith(section):
                # Feast validates each store's settings on their own; say which store.
                location = f"{section}.{location}"
            problems.append(f"{location or 'config'}: {error['msg']}")
            line = line or error_line
        where = f"{source}, line {line}" if line else source
        return RepoLoadError(
            f"{where}: invalid feature_store.yaml setting(s): {'; '.join(problems)}.",
            source,
            line,
        )
    return RepoLoadError(
        f"{source}: feature_store.yaml does not load: {redact(str(exc), secrets)}",
        source,
        None,
    )
