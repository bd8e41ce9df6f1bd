"""Block classes built while another thread parses Python source, and the reverse.

Pydantic parses source with ``ast.parse`` while it builds a class (each field's
docstring; the signature of a builtin default factory). On CPython 3.11.0-3.11.7 and
3.12.0-3.12.1 two parses in different threads can interleave (a garbage collection
inside one lets the other thread run) and the first then fails with ``SystemError: AST
constructor recursion depth mismatch``. A flow run on a process worker fails so when
its first import of a block module parses in the main thread while Prefect's event-loop
thread builds a pydantic model, which parses a builtin's signature.

The test makes that interleaving happen on purpose: a garbage-collector callback pauses
thread A inside its parse until thread B has done its part (or 2 s have passed); B
starts once A is paused there, or done.
"""

from __future__ import annotations

import ast
import gc
import importlib.util
import inspect
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType, ModuleType

import pytest

PAUSE_SECONDS = 2.0


def _block_module(path: Path) -> Path:
    fields = "".join(
        f"    field_{n}: int = {n}\n    \"\"\"Field {n}, described under it.\"\"\"\n\n"
        for n in range(40)
    )
    path.write_text(
        "from knot_prefect.blocks.base import KnotBlock\n\n\n"
        "class RacedBlock(KnotBlock):\n"
        f"    _block_type_name = '{path.stem}'\n\n{fields}"
    )
    return path


def _import(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def _inside_ast_parse(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_name == "parse" and frame.f_code.co_filename.endswith("ast.py"):
            return True
        frame = frame.f_back
    return False


class _Interleaving:
    """Pauses thread A inside its first parse until thread B is done."""

    def __init__(self) -> None:
        self.a_inside = threading.Event()
        self.b_done = threading.Event()
        self.collections_in_a = 0
        self.paused = False

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase != "start" or threading.current_thread().name != "A":
            return
        self.collections_in_a += 1
        if not self.paused and _inside_ast_parse(sys._getframe(1)):
            self.paused = True
            self.a_inside.set()
            self.b_done.wait(PAUSE_SECONDS)


@pytest.fixture
def interleaving() -> Iterator[_Interleaving]:
    callback = _Interleaving()
    threshold = gc.get_threshold()
    gc.callbacks.append(callback)
    gc.set_threshold(1)  # collect on (nearly) every allocation, so inside every parse
    try:
        yield callback
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(callback)


def _parse_a_signature() -> object:
    """What pydantic does for a builtin default factory, as Prefect's models have."""
    return str(inspect.signature(dict.fromkeys))


@pytest.mark.parametrize("paused", ["block class", "signature"])
def test_parses_in_two_threads_never_interleave(
    tmp_path: Path, interleaving: _Interleaving, paused: str
) -> None:
    importlib.import_module("knot_prefect.blocks.base")
    path = _block_module(tmp_path / f"raced_block_{paused.replace(' ', '_')}.py")

    def build_a_block() -> object:
        return _import(path).RacedBlock.model_json_schema()["properties"]["field_3"]["description"]

    work: dict[str, Callable[[], object]] = (
        {"A": build_a_block, "B": _parse_a_signature} if paused == "block class"
        else {"A": _parse_a_signature, "B": build_a_block})
    results: dict[str, object] = {}
    errors: dict[str, BaseException] = {}

    def run(name: str) -> None:
        try:
            if name == "B":
                interleaving.a_inside.wait(PAUSE_SECONDS)
            results[name] = work[name]()
        except BaseException as exc:  # the test reports every failure
            errors[name] = exc
        finally:
            if name == "B":
                interleaving.b_done.set()
            else:  # under the guard no collection runs inside a parse: A never pauses
                interleaving.a_inside.set()

    threads = [threading.Thread(target=run, args=(name,), name=name) for name in "AB"]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.modules.pop(path.stem, None)

    assert interleaving.collections_in_a > 0, "no garbage collection ran in thread A"
    assert errors == {}
    assert sorted(map(str, results.values())) == [
        "(iterable, value=None, /)", "Field 3, described under it."]


def test_import_knot_prefect_guards_ast_parse_where_cpython_needs_it() -> None:
    import knot_prefect  # noqa: F401 - the import installs the guard

    affected = (3, 11, 0) <= sys.version_info[:3] < (3, 11, 8) or (
        (3, 12, 0) <= sys.version_info[:3] < (3, 12, 2))
    assert getattr(ast.parse, "__knot_guarded__", False) == affected
    assert ast.unparse(ast.parse("x = 1")) == "x = 1"
    assert gc.isenabled()  # switched back on after the parse
