"""scripts/install-services.sh waits for the system package manager's lock."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-services.sh"
DPKG_LOCK = Path("/var/lib/dpkg/lock-frontend")
HOLD_SECONDS = 4

pytestmark = pytest.mark.skipif(
    not shutil.which("apt-get") or not DPKG_LOCK.exists(),
    reason="needs Debian's apt-get (run as root)",
)

HOLDER = f"""
import fcntl, sys, time
with open({str(DPKG_LOCK)!r}, "w") as lock:
    fcntl.lockf(lock, fcntl.LOCK_EX)
    print("held", flush=True)
    time.sleep({HOLD_SECONDS})
"""


def test_apt_waits_for_a_lock_another_install_holds() -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        # Installing an installed package changes nothing, but takes the same lock.
        result = subprocess.run(
            ["bash", "-c", f"source {SCRIPT} && apt_get install -y -qq coreutils"],
            capture_output=True, text=True, timeout=120,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive"},
        )
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert waited >= HOLD_SECONDS - 1.5, f"apt-get did not wait for the lock ({waited:.1f}s)"
