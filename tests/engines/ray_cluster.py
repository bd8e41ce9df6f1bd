"""A Ray head on loopback (``ray start --head --block``) that flows reach through the Ray client."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.services import BIN, ServiceUnavailable, free_port, managed_process, port_open


@dataclass(frozen=True)
class RayHead:
    """A running head: its Ray client address and the environment a client process needs."""

    address: str
    client_env: dict[str, str]
    folder: Path

    def client_server_errors(self) -> str:
        """The end of each client's server log (``ray_client_server_<port>.err``): why
        the head could not start the server of a client that it refused."""
        logs = sorted(self.folder.glob("session_latest/logs/ray_client_server_*.err"))
        return "".join(f"\n--- {log.name}:\n{log.read_text(errors='replace')[-3000:]}"
                       for log in logs)


@contextlib.contextmanager
def start_ray_head(cpus: int = 2) -> Iterator[RayHead]:
    """A head of ``cpus`` CPUs on free ports, with token authentication (Ray's default for
    ``ray start`` once a token exists) from a token file of its own; removed on exit."""
    ray = BIN / "ray"
    if not ray.exists():
        raise ServiceUnavailable("Ray head: pip install 'knot-prefect[ray]'")
    # Unix sockets live under the temp dir: keep its path short.
    folder = Path(tempfile.mkdtemp(prefix="knot-ray-"))
    token = folder / "token"
    token.write_text(uuid.uuid4().hex)
    client_env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    gcs_port, client_port = free_port(), free_port()
    command = [str(ray), "start", "--head", "--block", f"--port={gcs_port}",
               f"--ray-client-server-port={client_port}", f"--num-cpus={cpus}",
               "--node-ip-address=127.0.0.1", "--include-dashboard=false",
               "--disable-usage-stats", f"--temp-dir={folder}"]
    # A loaded machine may take longer than Ray's 30 s to start a client's server.
    env = {**client_env, "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": "180"}
    try:
        with managed_process("ray head", command, timeout=180, env=env,
                             ready=lambda: port_open(gcs_port) and port_open(client_port)):
            yield RayHead(f"ray://127.0.0.1:{client_port}", client_env, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
