"""A loopback simulator of the Azure Communication Services Email REST API, enough for the
``azure-communication-email`` SDK to send through it unmodified (the SDK is never mocked):

* ``POST /emails:send?api-version=...`` checks the HMAC-SHA256 signature the SDK computes
  from the connection string's key (``x-ms-date``, host, ``x-ms-content-sha256``), the
  body's hash and its required fields, and answers ``202`` with an ``Operation-Location``;
  the ``Operation-Id`` header names the operation, so a repeat is the same operation and
  the message is kept once (as ACS treats a repeated operation id);
* ``GET /emails/operations/{id}`` answers its status: ``Succeeded``, or ``Failed`` with an
  error for a recipient in ``fail`` (what ACS reports when it cannot deliver);
* with ``unavailable`` set every call is ``503``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

Answer = tuple[int, dict[str, Any], dict[str, str]]
UNAVAILABLE: Answer = (503, {"error": {"code": "ServiceUnavailable", "message": "try later"}}, {})


class AcsSimulator:
    def __init__(self) -> None:
        self.key = base64.b64encode(b"abonno-test-key-" + uuid.uuid4().bytes).decode()
        self.sent: dict[str, dict[str, Any]] = {}  # operation id -> message body, once
        self.requests = 0
        self.fail: set[str] = set()
        self.unavailable = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def connection_string(self) -> str:
        return f"endpoint={self.endpoint}/;accesskey={self.key}"

    def start(self) -> AcsSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def signed(self, method: str, path: str, headers: Any, body: bytes) -> bool:
        content_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
        if headers.get("x-ms-content-sha256") != content_hash:
            return False
        host = urlparse(self.endpoint).netloc
        to_sign = f"{method}\n{path}\n{headers.get('x-ms-date')};{host};{content_hash}"
        digest = hmac.new(base64.b64decode(self.key), to_sign.encode(), hashlib.sha256).digest()
        signature = base64.b64encode(digest).decode()
        expected = f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
        return hmac.compare_digest(headers.get("Authorization", ""), expected)

    def post(self, path: str, headers: Any, body: bytes) -> Answer:
        if not path.startswith("/emails:send?api-version="):
            return 404, {"error": {"code": "NotFound", "message": path}}, {}
        if not self.signed("POST", path, headers, body):
            return 401, {"error": {"code": "Denied", "message": "signature"}}, {}
        message = json.loads(body)
        if not (message.get("senderAddress") and message.get("recipients", {}).get("to")
                and message.get("content", {}).get("subject")):
            return 400, {"error": {"code": "BadRequest", "message": "missing fields"}}, {}
        op = headers.get("Operation-Id") or str(uuid.uuid4())
        self.sent.setdefault(op, message)
        location = f"{self.endpoint}/emails/operations/{op}?api-version=2025-09-01"
        return 202, {"id": op, "status": "Running"}, {"Operation-Location": location, "Retry-After": "0"}

    def get(self, path: str) -> Answer:
        op = urlparse(path).path.rsplit("/", 1)[-1]
        message = self.sent.get(op)
        if message is None:
            return 404, {"error": {"code": "NotFound", "message": op}}, {}
        if message["recipients"]["to"][0]["address"] in self.fail:
            return 200, {"id": op, "status": "Failed", "error": {"code": "EmailDroppedAllRecipientsSuppressed",
                                                                  "message": "recipient suppressed"}}, {}
        return 200, {"id": op, "status": "Succeeded"}, {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def answer(self, answer: Answer) -> None:
                status, body, headers = answer
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                sim.requests += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.answer(UNAVAILABLE if sim.unavailable else sim.post(self.path, self.headers, body))

            def do_GET(self) -> None:
                sim.requests += 1
                self.answer(UNAVAILABLE if sim.unavailable else sim.get(self.path))

        return Handler
