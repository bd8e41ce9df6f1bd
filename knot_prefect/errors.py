"""Errors raised by knot. Each message says what was wrong and what to do about it."""

from __future__ import annotations


class KnotError(Exception):
    """Base class of every error knot raises on purpose."""


class ConfigurationError(KnotError):
    """A block, a block document or a setting is wrong; the message names which."""


class BlockDocumentError(ConfigurationError):
    """A block document file cannot be applied; nothing from the file was written."""


class ConnectionCheckError(KnotError):
    """A block could not reach the system it describes."""
