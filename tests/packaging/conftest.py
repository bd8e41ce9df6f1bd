"""The built distribution and fresh virtual environments installed from it.

The sdist and the wheel are built once per session (``python -m build``), or taken from
``KNOT_DIST`` when CI built them already (``make dist``). Each environment is a new
``uv venv`` filled by ``uv pip install`` with the project's constraints; every one
shares uv's package cache, so an install links files instead of downloading them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from knot_prefect._version import __version__

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
UV = shutil.which("uv") or str(Path(sys.executable).parent / "uv")


@dataclass(frozen=True)
class Distribution:
    sdist: Path
    wheel: Path


@dataclass(frozen=True)
class FreshVenv:
    path: Path
    install_seconds: float

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    def bin(self, name: str) -> str:
        return str(self.path / "bin" / name)

    def size_mb(self) -> float:
        total = sum(p.stat().st_size for p in self.path.rglob("*")
                    if p.is_file() and not p.is_symlink())
        return total / 1e6


def build(destination: Path) -> Distribution:
    """``python -m build`` of this checkout (no isolation: the dev venv has hatchling)."""
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                    str(destination), str(ROOT)], check=True, capture_output=True, timeout=300)
    return find_distribution(destination)


def find_distribution(folder: Path) -> Distribution:
    wheels = sorted(folder.glob(f"knot_prefect-{__version__}-*.whl"))
    sdists = sorted(folder.glob(f"knot_prefect-{__version__}.tar.gz"))
    assert wheels and sdists, f"no knot_prefect {__version__} sdist and wheel in {folder}"
    return Distribution(sdist=sdists[-1], wheel=wheels[-1])


@pytest.fixture(scope="session")
def distribution(tmp_path_factory: pytest.TempPathFactory) -> Distribution:
    given = os.environ.get("KNOT_DIST")
    if given:
        return find_distribution(Path(given))
    return build(tmp_path_factory.mktemp("dist"))


def fresh_venv(path: Path, *requirements: str, extra_args: tuple[str, ...] = ()) -> FreshVenv:
    """A new virtual environment with ``requirements`` installed (and nothing else)."""
    subprocess.run([UV, "venv", "-q", "--python", sys.executable, str(path)], check=True,
                   capture_output=True, timeout=120)
    started = time.monotonic()
    if requirements:
        completed = subprocess.run(
            [UV, "pip", "install", "-q", "--python", str(path / "bin" / "python"),
             "-c", str(CONSTRAINTS), *extra_args, *requirements],
            capture_output=True, text=True, timeout=900,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
    return FreshVenv(path=path, install_seconds=time.monotonic() - started)


def run_in(venv: FreshVenv, command: list[str], cwd: Path, env: dict[str, str] | None = None,
           timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with the venv first on PATH and nothing of the test's venv."""
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("PREFECT_", "KNOT_", "PYTEST_", "VIRTUAL_ENV"))}
    environment["PATH"] = f"{venv.path / 'bin'}:{environment.get('PATH', '')}"
    environment["VIRTUAL_ENV"] = str(venv.path)
    environment.update(env or {})
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=timeout)
