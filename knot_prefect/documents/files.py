"""Block documents as YAML: validate every document of a file, then apply them all.

A block document file lists documents under ``blocks:``; each names its block type
(the slug, as ``prefect block type ls`` shows it), a document name and its data.
``${VAR}`` and ``${VAR:-default}`` in any string are replaced from the environment, which
is how secrets reach a document without being written in the file; ``$${NAME}`` is kept
as the literal text ``${NAME}``.

Examples:
    >>> text = '''
    ... blocks:
    ...   - type: duckdb-warehouse
    ...     name: local-warehouse
    ...     data:
    ...       path: ${WAREHOUSE_DIR:-/tmp}/warehouse.duckdb
    ... '''
    >>> [doc.name for doc in parse_documents(text, source="example.yaml", environ={})]
    ['local-warehouse']
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import Secret, SecretBytes, SecretStr, ValidationError

from knot_prefect.errors import BlockDocumentError

if TYPE_CHECKING:
    from prefect.blocks.core import Block

# ``${VAR}`` or ``${VAR:-default}``; ``$${NAME}`` stays a literal ``${NAME}`` (for text
# that has references of its own, such as an inline feature_store.yaml).
_ENV_REFERENCE = re.compile(r"(\$?)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class BlockDocumentSpec:
    """One block document read from a file, not yet validated.

    Attributes:
        block_type: The block type slug, e.g. ``duckdb-warehouse``.
        name: The document name.
        data: Field values, with environment references already expanded.
        where: ``file#index (name)``, used in error messages.
    """

    block_type: str
    name: str
    data: dict[str, Any]
    where: str
    secret_paths: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class AppliedDocument:
    """The outcome of applying one document."""

    block_type: str
    name: str
    action: str  # "created", "updated" or "unchanged"


def _expand(value: Any, where: str, path: str, environ: Mapping[str, str]) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            escaped, variable, default = match.group(1), match.group(2), match.group(3)
            if escaped:
                return match.group(0)[1:]
            if variable in environ:
                return environ[variable]
            if default is not None:
                return default
            raise BlockDocumentError(
                f"{where}: field '{path}' refers to ${{{variable}}}, which is not set. "
                f"Export {variable} (or write ${{{variable}:-default}}) and apply again."
            )

        return _ENV_REFERENCE.sub(replace, value)
    if isinstance(value, dict):
        return {k: _expand(v, where, f"{path}.{k}" if path else str(k), environ)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, where, f"{path}[{i}]", environ) for i, v in enumerate(value)]
    return value


def parse_documents(
    text: str, source: str, environ: Mapping[str, str] | None = None
) -> list[BlockDocumentSpec]:
    """Parse a block document file and expand its environment references.

    Args:
        text: The YAML text.
        source: The file name, for error messages.
        environ: Where ``${VAR}`` values come from (default: ``os.environ``).

    Returns:
        One spec per document, in file order.

    Raises:
        BlockDocumentError: For YAML that does not parse, a document without a type or
            name, a duplicated name, or a missing environment variable.
    """
    environ = os.environ if environ is None else environ
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise BlockDocumentError(f"{source}: YAML does not parse{line}: {exc}") from exc
    if not isinstance(content, dict) or not isinstance(content.get("blocks"), list):
        raise BlockDocumentError(
            f"{source}: expected a top-level 'blocks:' list of documents "
            "(each with 'type', 'name' and 'data')."
        )
    specs: list[BlockDocumentSpec] = []
    seen: set[tuple[str, str]] = set()
    for index, raw in enumerate(content["blocks"]):
        where = f"{source}#{index + 1}"
        if not isinstance(raw, dict):
            raise BlockDocumentError(f"{where}: each document must be a mapping.")
        unknown_keys = set(raw) - {"type", "name", "data"}
        if unknown_keys:
            raise BlockDocumentError(
                f"{where}: unknown keys {sorted(unknown_keys)}; use 'type', 'name', 'data'."
            )
        block_type, name = raw.get("type"), raw.get("name")
        if not isinstance(block_type, str) or not block_type:
            raise BlockDocumentError(f"{where}: missing 'type' (a block type slug).")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
            raise BlockDocumentError(
                f"{where}: 'name' must be lowercase letters, digits and dashes, got {name!r}."
            )
        where = f"{where} ({block_type}/{name})"
        if (block_type, name) in seen:
            raise BlockDocumentError(f"{where}: this document appears twice in the file.")
        seen.add((block_type, name))
        data = raw.get("data") or {}
        if not isinstance(data, dict):
            raise BlockDocumentError(f"{where}: 'data' must be a mapping of field values.")
        specs.append(BlockDocumentSpec(block_type, name, _expand(data, where, "", environ), where))
    return specs


def block_class_for(slug: str, where: str) -> type[Block]:
    """Find the block class of a slug among knot's blocks and installed collections.

    Raises:
        BlockDocumentError: When no installed block class has that slug; the message
            lists knot's block types.
    """
    from prefect.blocks.core import Block, UnknownBlockType
    from prefect.exceptions import PrefectException

    from knot_prefect.blocks.registry import load_block_classes

    knot_classes = load_block_classes()
    for cls in knot_classes.values():
        if cls.get_block_type_slug() == slug:
            return cls
    try:
        return Block.get_block_class_from_key(slug)
    except (KeyError, PrefectException, ValueError, UnknownBlockType):
        known = ", ".join(sorted(c.get_block_type_slug() for c in knot_classes.values()))
        raise BlockDocumentError(
            f"{where}: unknown block type {slug!r}. knot block types: {known}. "
            "Other types need their collection installed (e.g. prefect-aws)."
        ) from None


def build_block(spec: BlockDocumentSpec) -> Block:
    """Validate a spec against its block class and return the block instance.

    Raises:
        BlockDocumentError: Naming the document and each field that is unknown or of
            the wrong type.
    """
    cls = block_class_for(spec.block_type, spec.where)
    unknown = sorted(set(spec.data) - set(cls.model_fields))
    if unknown:
        raise BlockDocumentError(
            f"{spec.where}: unknown field(s) {unknown} for {cls.__name__}; "
            f"known fields: {sorted(cls.model_fields)}."
        )
    try:
        return cls(**spec.data)
    except ValidationError as exc:
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in err['loc'])}': {err['msg']}"
            for err in exc.errors()
        )
        raise BlockDocumentError(f"{spec.where}: {problems}.") from None


def validate_file(path: str | Path, environ: Mapping[str, str] | None = None) -> list[Any]:
    """Read and validate every document of a file without writing anything.

    Returns:
        ``(spec, block)`` pairs, in file order.

    Raises:
        BlockDocumentError: Listing every invalid document of the file.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise BlockDocumentError(f"{path}: cannot read the file ({exc.strerror}).") from exc
    specs = parse_documents(text, source=str(path), environ=environ)
    built: list[Any] = []
    errors: list[str] = []
    for spec in specs:
        try:
            built.append((spec, build_block(spec)))
        except BlockDocumentError as exc:
            errors.append(str(exc))
    if errors:
        raise BlockDocumentError(
            "Nothing was applied; fix these documents first:\n- " + "\n- ".join(errors)
        )
    return built


def _comparable(block: Block) -> dict[str, Any]:
    """Field values with secrets revealed, to tell whether a document changed."""

    def reveal(value: Any) -> Any:
        if isinstance(value, (SecretStr, SecretBytes, Secret)):
            return reveal(value.get_secret_value())
        if isinstance(value, dict):
            return {k: reveal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [reveal(v) for v in value]
        if hasattr(value, "model_fields") and hasattr(value, "_block_document_name"):
            return _comparable(value)
        return value

    return {name: reveal(getattr(block, name)) for name in type(block).model_fields}


def apply_file(
    path: str | Path, environ: Mapping[str, str] | None = None
) -> list[AppliedDocument]:
    """Create or update every block document of a file, idempotently.

    Every document is validated before any is written, so a file with one bad
    document applies nothing.

    Args:
        path: The YAML file.
        environ: Where ``${VAR}`` values come from (default: ``os.environ``).

    Returns:
        What happened to each document.
    """
    from prefect.exceptions import ObjectNotFound

    outcomes: list[AppliedDocument] = []
    for spec, block in validate_file(path, environ):
        cls = type(block)
        cls.register_type_and_schema()
        try:
            existing = cls.load(spec.name, validate=False)
        except (ValueError, ObjectNotFound):
            existing = None
        if existing is not None and _comparable(existing) == _comparable(block):
            action = "unchanged"
        else:
            block.save(spec.name, overwrite=True)
            action = "created" if existing is None else "updated"
        outcomes.append(AppliedDocument(spec.block_type, spec.name, action))
    return outcomes


def secret_env_name(document: str, field_path: str) -> str:
    """The environment variable an exported secret field refers to.

    Examples:
        >>> secret_env_name("prod-postgres", "password")
        'PROD_POSTGRES_PASSWORD'
    """
    return re.sub(r"[^A-Z0-9]+", "_", f"{document}_{field_path}".upper()).strip("_")


def export_document(block: Block, name: str) -> str:
    """Render a block document as YAML with every secret replaced by a ``${VAR}``.

    Args:
        block: The loaded block.
        name: Its document name.

    Returns:
        A block document file that ``knot blocks apply`` accepts. Every secret (a
        ``SecretStr``, or each key of a ``SecretDict``) becomes a ``${VAR}`` reference
        named after the document and the field, so no secret value is ever printed.
    """

    def render(value: Any, path: str) -> Any:
        if isinstance(value, (SecretStr, SecretBytes)):
            return f"${{{secret_env_name(name, path)}}}"
        if isinstance(value, Secret):  # e.g. prefect's SecretDict: one variable per key
            inner = value.get_secret_value()
            if isinstance(inner, dict):
                return {k: f"${{{secret_env_name(name, f'{path}_{k}')}}}" for k in inner}
            return f"${{{secret_env_name(name, path)}}}"
        if hasattr(value, "model_fields") and hasattr(value, "_block_document_name"):
            return {k: render(getattr(value, k), f"{path}_{k}") for k in type(value).model_fields}
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, str):
            return _ENV_REFERENCE.sub(lambda m: "$" + m.group(0), value)  # kept literal
        if isinstance(value, dict):
            return {k: render(v, f"{path}_{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [render(v, path) for v in value]
        if hasattr(value, "model_dump"):
            return render(value.model_dump(), path)
        return value

    data = {
        field_name: render(getattr(block, field_name), field_name)
        for field_name in type(block).model_fields
        if getattr(block, field_name) is not None
    }
    document = {"blocks": [{"type": block.get_block_type_slug(), "name": name, "data": data}]}
    return yaml.safe_dump(document, sort_keys=False)
