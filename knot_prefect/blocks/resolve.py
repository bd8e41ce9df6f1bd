"""Turn a block or a block document name into a block, with errors that list the choices.

Tasks and flows take "a warehouse" (or any block) either as a loaded block or as the
name of a saved block document, so the same flow runs against another system by
passing another name.

Examples:
    >>> from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse
    >>> from knot_prefect.blocks.warehouses.base import Warehouse
    >>> warehouse = DuckDBWarehouse(path=":memory:")
    >>> resolve_block(warehouse, Warehouse) is warehouse
    True
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TypeVar, cast

from prefect.blocks.core import Block

from knot_prefect.errors import ConfigurationError

B = TypeVar("B", bound=Block)


class BlockNotFoundError(ConfigurationError, ValueError):
    """No block document of the wanted kind has the given name."""


def resolve_block(
    value: B | str | None,
    block_class: Callable[..., B],
    default: Callable[[], B] | None = None,
    parameter: str | None = None,
) -> B:
    """Return ``value`` if it is a ``block_class`` block, else load the document it names.

    Args:
        value: A block instance, a document name (``"prod"``) or a document name
            with its block type slug (``"duckdb-warehouse/prod"``); None when
            ``default`` is given.
        block_class: The block class wanted; an abstract base such as ``Warehouse``
            matches documents of every knot block type derived from it. (Typed as a
            callable returning the block because type checkers refuse abstract
            classes where ``type[B]`` is expected.)
        default: Builds the block to use when ``value`` is None, e.g. ``MLflowTracking``
            for the embedded store.
        parameter: The flow or task parameter ``value`` was passed as; a missing
            document's error then names it.

    Returns:
        The block.

    Raises:
        BlockNotFoundError: When no document of a matching type has that name (the
            message lists the documents that exist), or several do.
        TypeError: When ``value`` is a block of another kind, or not a block or a string,
            or when ``block_class`` is not a block class.
    """
    if not (isinstance(block_class, type) and issubclass(block_class, Block)):
        raise TypeError(f"Expected a block class, got {block_class!r}.")
    wanted = cast("type[B]", block_class)
    if value is None and default is not None:
        return default()
    if isinstance(value, wanted):
        return value
    if isinstance(value, Block):
        raise TypeError(
            f"Expected a {wanted.__name__} block, got a {type(value).__name__} block."
        )
    if not isinstance(value, str) or not value:
        raise TypeError(
            f"Expected a {wanted.__name__} block or a block document name, "
            f"got {type(value).__name__}."
        )
    try:
        return _load_document(value, wanted)
    except BlockNotFoundError as exc:
        if parameter is None:
            raise
        raise BlockNotFoundError(
            f"{parameter}={value!r}: {exc} Or pass {parameter}= the name of your own document."
        ) from None


def _load_document(value: str, wanted: type[B]) -> B:
    candidates = _candidate_classes(wanted)
    if "/" in value:
        slug, name = value.split("/", 1)
        chosen = [cls for cls in candidates if cls.get_block_type_slug() == slug]
        if not chosen:
            raise BlockNotFoundError(
                f"{slug!r} is not a block type slug of a {wanted.__name__}; use one of: "
                f"{', '.join(sorted(c.get_block_type_slug() for c in candidates))}."
            )
        candidates, value = chosen, name
    documents = document_names(candidates)
    matches = [cls for cls in candidates if value in documents[cls.get_block_type_slug()]]
    if len(matches) == 1:
        # Block.load is typed for async callers too; called synchronously it returns the block.
        return cast("B", matches[0].load(value))
    existing = sorted(f"{slug}/{name}" for slug, names in documents.items() for name in names)
    if matches:
        options = ", ".join(f"{cls.get_block_type_slug()}/{value}" for cls in matches)
        raise BlockNotFoundError(
            f"Several {wanted.__name__} documents are named {value!r}: pass one of "
            f"{options}."
        )
    raise BlockNotFoundError(
        f"No {wanted.__name__} block document is named {value!r}. Existing documents: "
        f"{', '.join(existing) or 'none'}. Create one in the Prefect UI, with "
        "`knot blocks apply FILE`, or with YourBlock(...).save(name)."
    )


def _candidate_classes(block_class: type[B]) -> list[type[B]]:
    """``block_class`` (when concrete) and every concrete subclass knot or the user defined."""
    from knot_prefect.blocks.registry import load_block_classes

    load_block_classes()  # defines every knot block class, so subclasses are known
    seen: dict[str, type[B]] = {}
    pending: list[type[B]] = [block_class]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not inspect.isabstract(cls):
            seen.setdefault(cls.get_block_type_slug(), cls)
    return list(seen.values())


def document_names(classes: list[type[B]]) -> dict[str, set[str]]:
    """Names of the saved documents of each block type slug."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    names: dict[str, set[str]] = {}
    with get_client(sync_client=True) as client:
        for cls in classes:
            slug = cls.get_block_type_slug()
            try:
                documents = client.read_block_documents_by_type(slug, include_secrets=False)
            except ObjectNotFound:
                documents = []
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code != 404:  # a type never registered has no documents
                    raise
                documents = []
            names[slug] = {doc.name for doc in documents if doc.name and not doc.is_anonymous}
    return names
