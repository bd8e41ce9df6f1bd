"""Block documents from YAML: apply idempotently, export redacted, reject bad files whole."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from knot_prefect.documents import apply_file, export_document, parse_documents
from knot_prefect.errors import BlockDocumentError


class DocumentsTestConnection(Block):
    """A block type used only by these tests: a host, a port and a secret."""

    _block_type_slug = "knot-documents-test-connection"
    host: str = Field(description="Host name.")
    port: int = Field(default=5432, description="Port.")
    password: SecretStr | None = Field(default=None, description="Password.")


SLUG = DocumentsTestConnection.get_block_type_slug()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "blocks.yaml"
    path.write_text(text)
    return path


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_apply_creates_then_is_idempotent_then_updates(tmp_path: Path) -> None:
    name = unique("db")
    path = write(tmp_path, f"""
blocks:
  - type: {SLUG}
    name: {name}
    data:
      host: ${{TEST_DB_HOST}}
      password: ${{TEST_DB_PASSWORD}}
""")
    env = {"TEST_DB_HOST": "db.internal", "TEST_DB_PASSWORD": "s3cret-value"}
    assert [o.action for o in apply_file(path, env)] == ["created"]
    assert [o.action for o in apply_file(path, env)] == ["unchanged"]
    loaded = DocumentsTestConnection.load(name)
    assert loaded.host == "db.internal"
    assert loaded.password is not None
    assert loaded.password.get_secret_value() == "s3cret-value"

    changed = {**env, "TEST_DB_PASSWORD": "rotated"}
    assert [o.action for o in apply_file(path, changed)] == ["updated"]
    reloaded = DocumentsTestConnection.load(name)
    assert reloaded.password is not None
    assert reloaded.password.get_secret_value() == "rotated"


def test_export_replaces_secrets_with_environment_references(tmp_path: Path) -> None:
    name = unique("prod-db")
    DocumentsTestConnection(host="h", password=SecretStr("hunter2-secret")).save(name)
    text = export_document(DocumentsTestConnection.load(name), name)
    assert "hunter2-secret" not in text
    variable = name.upper().replace("-", "_") + "_PASSWORD"
    assert f"${{{variable}}}" in text

    # The export applies again once the variable is set.
    path = write(tmp_path, text)
    assert [o.action for o in apply_file(path, {variable: "hunter2-secret"})] == ["unchanged"]


def test_invalid_document_applies_nothing_and_names_file_document_and_field(
    tmp_path: Path,
) -> None:
    good, bad = unique("good"), unique("bad")
    path = write(tmp_path, f"""
blocks:
  - type: {SLUG}
    name: {good}
    data: {{host: a}}
  - type: {SLUG}
    name: {bad}
    data: {{host: b, port: not-a-number}}
""")
    with pytest.raises(BlockDocumentError) as info:
        apply_file(path, {})
    message = str(info.value)
    assert str(path) in message and bad in message and "port" in message
    assert "Nothing was applied" in message
    with pytest.raises(ValueError):
        DocumentsTestConnection.load(good)


def test_missing_environment_variable_is_named(tmp_path: Path) -> None:
    name = unique("db")
    path = write(tmp_path, f"""
blocks:
  - type: {SLUG}
    name: {name}
    data:
      host: h
      password: ${{KNOT_TEST_UNSET_VARIABLE}}
""")
    with pytest.raises(BlockDocumentError) as info:
        apply_file(path, {})
    message = str(info.value)
    assert "KNOT_TEST_UNSET_VARIABLE" in message and "password" in message and name in message


def test_unknown_block_type_lists_knot_types(tmp_path: Path) -> None:
    path = write(tmp_path, "blocks:\n  - {type: no-such-block, name: x, data: {}}\n")
    with pytest.raises(BlockDocumentError, match="unknown block type 'no-such-block'"):
        apply_file(path, {})


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f"blocks:\n  - {{type: {SLUG}, name: x, data: {{host: h, hots: y}}}}\n")
    with pytest.raises(BlockDocumentError, match=r"unknown field\(s\) \['hots'\]"):
        apply_file(path, {})


def test_yaml_that_does_not_parse_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "blocks:\n  - type: x\n    name: [unclosed\n")
    with pytest.raises(BlockDocumentError, match=r"YAML does not parse at line \d"):
        apply_file(path, {})


def test_environment_default_is_used_when_variable_is_unset() -> None:
    (spec,) = parse_documents(
        "blocks:\n  - {type: t, name: n, data: {path: '${NOPE:-/tmp/x}'}}\n", "f.yaml", {}
    )
    assert spec.data == {"path": "/tmp/x"}
