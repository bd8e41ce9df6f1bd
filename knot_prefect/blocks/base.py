"""The base class of every knot block: shared metadata and a connection check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self

from prefect.blocks.core import Block, schema_extra
from pydantic import ConfigDict, ValidationError

from knot_prefect.errors import ConfigurationError
from knot_prefect.settings import get_settings

if TYPE_CHECKING:
    from prefect.client.schemas.objects import BlockDocument

DOCS_BASE_URL = "https://github.com/knot-prefect/knot-prefect/blob/main/docs/blocks"


def _block_schema_extra(schema: dict[str, Any], model: type[Block]) -> None:
    """Prefect's block schema additions, with each field's description as one paragraph.

    A field's docstring wraps over lines in the source; the Prefect UI shows the
    sentence, not the line breaks.
    """
    schema_extra(schema, model)
    for field in schema.get("properties", {}).values():
        if isinstance(field.get("description"), str):
            field["description"] = " ".join(field["description"].split())


class InvalidBlockDocumentError(ConfigurationError, RuntimeError):
    """A saved block document does not pass its block's validation; nothing is echoed."""


class KnotBlock(Block):
    """Base class of knot blocks.

    Subclasses set ``_block_type_name``, ``_description`` (or a docstring) and
    ``_code_example``, and implement :meth:`check_connection` so ``knot doctor`` can
    report on them. Every block shares one logo, and its documentation URL is its page
    under ``docs/blocks/``, named after its block type slug without the ``knot-``
    prefix; a subclass may still set ``_documentation_url`` itself, and a subclass
    outside knot inherits its parent's. A field is described by the docstring under it
    (pydantic's ``use_attribute_docstrings``), which the Prefect UI shows.

    Examples:
        >>> from knot_prefect.blocks.model_spec import ModelSpec
        >>> ModelSpec.get_block_type_slug(), ModelSpec._documentation_url.rsplit("/", 1)[-1]
        ('knot-model-spec', 'model-spec.md')
    """

    _logo_url: ClassVar = get_settings().logo_url  # type: ignore[assignment]

    model_config = ConfigDict(use_attribute_docstrings=True, json_schema_extra=_block_schema_extra)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # Only knot's own blocks have a page in docs/blocks; others keep what they inherit.
        if cls.__module__.startswith("knot_prefect.") and "_documentation_url" not in cls.__dict__:
            page = cls.get_block_type_slug().removeprefix("knot-")
            cls._documentation_url = f"{DOCS_BASE_URL}/{page}.md"  # type: ignore[assignment]

    def check_connection(self) -> str:
        """Reach the system this block describes.

        Returns:
            A short human-readable detail on success (e.g. a server version).

        Raises:
            Exception: Whatever the underlying client raised; ``knot doctor`` reports it.
        """
        raise NotImplementedError(f"{type(self).__name__} has no connection check")

    @classmethod
    def _load_from_block_document(
        cls, block_document: BlockDocument, validate: bool = True
    ) -> Self:
        # Prefect replaces the validation error with a message that names no field;
        # knot names each field and why, never the stored value.
        try:
            return super()._load_from_block_document(block_document, validate=validate)
        except RuntimeError as exc:
            cause: Any = exc.__cause__
            if not isinstance(cause, ValidationError):
                raise
            problems = "; ".join(
                f"field '{'.'.join(str(part) for part in error['loc']) or '(document)'}': "
                f"{error['msg']}"
                for error in cause.errors(include_input=False, include_url=False)
            )
            raise InvalidBlockDocumentError(
                f"Block document {block_document.name!r} ({cls.get_block_type_slug()}) "
                f"does not load: {problems}. Fix it in the Prefect UI, or re-apply it with "
                "`knot blocks apply FILE`."
            ) from None
