"""A recording stand-in for BigQuery's REST API, for tests at the client's boundary.

No BigQuery emulator exists here, so the real ``google.cloud.bigquery.Client`` is
pointed at this local endpoint (``client_options.api_endpoint``). It answers the
calls knot makes (OAuth token, tables.get/delete, jobs.insert, multipart upload,
jobs.get, getQueryResults) with minimal valid resources and records every request,
so tests assert what knot sent: job configurations, SQL text, query parameters and
the uploaded Parquet bytes.
"""

from __future__ import annotations

import email.parser
import email.policy
import http.server
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tests.recording_endpoint import JsonHandler, serve


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any = None
    upload: pa.Table | None = None


@dataclass
class BigQueryEndpoint:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    tables: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    query_result: tuple[list[dict[str, str]], list[list[Any]]] = ([], [])
    fail_next_load: str | None = None

    def reset(self) -> None:
        self.requests.clear()
        self.tables.clear()
        self.jobs.clear()
        self.query_result = ([], [])
        self.fail_next_load = None

    def job_requests(self) -> list[dict[str, Any]]:
        """The configurations of the jobs inserted, in order."""
        return [r.body["configuration"] for r in self.requests
                if r.method == "POST" and r.path.endswith("/jobs")]


_SCHEMA_TYPES = {
    "int64": "INTEGER", "double": "FLOAT", "bool": "BOOLEAN", "string": "STRING",
    "large_string": "STRING",
}


def _schema_of(table: pa.Table) -> list[dict[str, str]]:
    fields = []
    for item in table.schema:
        kind = _SCHEMA_TYPES.get(str(item.type), "STRING")
        if pa.types.is_timestamp(item.type):
            kind = "TIMESTAMP" if item.type.tz else "DATETIME"
        if pa.types.is_decimal(item.type):
            kind = "NUMERIC"
        fields.append({"name": item.name, "type": kind, "mode": "NULLABLE"})
    return fields


def make_handler(state: BigQueryEndpoint) -> type[JsonHandler]:
    class Handler(JsonHandler):
        def _record(self, body: Any = None, upload: pa.Table | None = None) -> Recorded:
            item = Recorded(self.command, *self.url_parts(), body, upload)
            state.requests.append(item)
            return item

        def _job(self, config: dict[str, Any], job_id: str, error: str | None = None
                 ) -> dict[str, Any]:
            status: dict[str, Any] = {"state": "DONE"}
            if error:
                status["errorResult"] = {"reason": "invalid", "message": error}
                status["errors"] = [status["errorResult"]]
            job = {
                "kind": "bigquery#job", "id": job_id,
                "jobReference": {"projectId": "knot-proj", "jobId": job_id, "location": "US"},
                "configuration": config, "status": status,
                "statistics": {"creationTime": "1", "startTime": "1", "endTime": "2"},
            }
            state.jobs[job_id] = job
            return job

        def do_POST(self) -> None:
            try:
                self._post()
            except Exception as exc:  # answer, so the client fails instead of retrying
                self.send_json(400, {"error": {"code": 400, "message": f"endpoint: {exc!r}"}})

        def _post(self) -> None:
            path = self.url_parts()[0]
            raw = self.read_body()
            if path == "/token":
                self._record()
                return self.send_json(200, {"access_token": "test-token", "token_type": "Bearer",
                                        "expires_in": 3600})
            if path.startswith("/upload/"):
                return self._upload(raw)
            if path.endswith("/jobs"):
                body = json.loads(raw)
                self._record(body)
                config = body["configuration"]
                job_id = body["jobReference"]["jobId"]
                if "copy" in config:
                    source = config["copy"]["sourceTables"][0]["tableId"]
                    target = config["copy"]["destinationTable"]["tableId"]
                    state.tables[target] = state.tables[source]
                return self.send_json(200, self._job(config, job_id))
            self._record(raw.decode(errors="replace"))
            return self.send_json(404, {"error": {"code": 404, "message": f"no route {path}"}})

        def _upload(self, raw: bytes) -> None:
            message = email.parser.BytesParser(policy=email.policy.default).parsebytes(
                b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + raw
            )
            parts = list(message.iter_parts())  # type: ignore[attr-defined]
            body = json.loads(parts[0].get_content())
            payload = parts[1].get_payload(decode=True)
            upload = pq.read_table(io.BytesIO(payload))
            self._record(body, upload)
            config = body["configuration"]
            target = config["load"]["destinationTable"]["tableId"]
            job_id = body["jobReference"]["jobId"]
            error, state.fail_next_load = state.fail_next_load, None
            if not error:
                state.tables[target] = _schema_of(upload)
            return self.send_json(200, self._job(config, job_id, error))

        def do_GET(self) -> None:
            path = self.url_parts()[0]
            self._record()
            if match := re.search(r"/datasets/([^/]+)/tables/([^/]+)$", path):
                dataset, table = match.groups()
                if table not in state.tables:
                    return self.send_json(404, {"error": {"code": 404, "message":
                                                      f"Not found: Table {table}"}})
                return self.send_json(200, {
                    "tableReference": {"projectId": "knot-proj", "datasetId": dataset,
                                       "tableId": table},
                    "schema": {"fields": state.tables[table]},
                })
            if match := re.search(r"/datasets/([^/]+)$", path):
                return self.send_json(200, {"datasetReference": {"projectId": "knot-proj",
                                                             "datasetId": match.group(1)},
                                        "location": "US"})
            if match := re.search(r"/jobs/([^/]+)$", path):
                return self.send_json(200, state.jobs[match.group(1)])
            if match := re.search(r"/queries/([^/]+)$", path):
                fields, rows = state.query_result
                return self.send_json(200, {
                    "kind": "bigquery#getQueryResultsResponse",
                    "jobReference": {"projectId": "knot-proj", "jobId": match.group(1),
                                     "location": "US"},
                    "jobComplete": True, "schema": {"fields": fields},
                    "totalRows": str(len(rows)),
                    "rows": [{"f": [{"v": value} for value in row]} for row in rows],
                })
            return self.send_json(404, {"error": {"code": 404, "message": f"no route {path}"}})

        def do_DELETE(self) -> None:
            path = self.url_parts()[0]
            self._record()
            if match := re.search(r"/tables/([^/]+)$", path):
                state.tables.pop(match.group(1), None)
            return self.send_json(204)

    return Handler


def start_endpoint() -> tuple[BigQueryEndpoint, http.server.ThreadingHTTPServer]:
    state = BigQueryEndpoint()
    server = serve(make_handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    return state, server
