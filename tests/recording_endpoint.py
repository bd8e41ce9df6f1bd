"""What every recording stand-in for a cloud REST API shares: a handler that reads and
answers JSON quietly, served from a thread on a free loopback port (HTTP or HTTPS).

Each endpoint (``tests/cloud_warehouses/bigquery_endpoint.py``,
``tests/engines/databricks_endpoint.py``) subclasses :class:`JsonHandler` with its routes
and records the requests the real client sends.
"""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import urllib.parse
from typing import Any


class JsonHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers JSON."""

    def log_message(self, *args: Any) -> None:
        pass

    def send_json(self, status: int, body: Any = None) -> None:
        """Answer ``status`` with ``body`` as JSON (an empty body for ``None``)."""
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self) -> bytes:
        """The request's body (empty without a ``Content-Length``)."""
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def url_parts(self) -> tuple[str, dict[str, list[str]]]:
        """The request's path and its query parameters."""
        parsed = urllib.parse.urlparse(self.path)
        return parsed.path, urllib.parse.parse_qs(parsed.query)


def serve(handler: type[http.server.BaseHTTPRequestHandler],
          tls: tuple[str, str] | None = None) -> http.server.ThreadingHTTPServer:
    """Serve ``handler`` from a daemon thread on a free loopback port until ``shutdown()``.

    Args:
        handler: The endpoint's request handler class.
        tls: ``(certificate, key)`` files to serve HTTPS with; plain HTTP without.
    """
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
