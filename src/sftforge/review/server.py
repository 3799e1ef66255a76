"""`sftforge review`: the report's record browser served on 127.0.0.1, with accept/reject buttons.

GET /                 the review page (the report, in review mode, with the decisions in force)
GET /api/decisions    {record id: decision}
POST /api/decisions   {"id": ..., "decision": "accept" | "reject" | "clear", "note": ...}; 409 with the reason when
                      the decision cannot be taken (a held-out record, an unknown id)

Only loopback is served. Every request must name this server in its Host header (a page on another site that
rebinds its DNS name to 127.0.0.1 sends its own name), and a POST must carry a JSON body (another origin cannot
send one without a CORS preflight, which this server does not answer) and, when the browser sends an Origin, this
server's own.
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sftforge.errors import ReviewError, SftforgeError
from sftforge.recipe import Recipe
from sftforge.report.collect import ReportOptions, collect
from sftforge.report.render import render_html
from sftforge.review.decisions import Reviewable, append_decision, load_decisions, reviewable
from sftforge.run import RunDir

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
_DEFAULT_OPTIONS = ReportOptions()  # frozen: one instance serves as the default


class ReviewServer(ThreadingHTTPServer):
    """Holds the run, the page's data (collected once) and a lock that serialises decisions."""

    daemon_threads = True

    def __init__(self, run: RunDir, recipe: Recipe, port: int = 0, options: ReportOptions = _DEFAULT_OPTIONS) -> None:
        self.run = run
        self.recipe = recipe
        self.options = options
        self.allowed: Reviewable = reviewable(run)
        self.data: dict[str, Any] = collect(run, recipe, options)
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), ReviewHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if isinstance(host, (bytes, bytearray)):  # the socket API's type; bound above to a str address
            host = host.decode()
        return f"http://{host}:{port}/"

    def page(self) -> bytes:
        with self.lock:
            decisions = load_decisions(self.run)
            for rec in self.data["records"]:
                rec["decision"] = decisions.get(rec["id"])
            return render_html(self.data, review=True).encode("utf-8")

    def decide(self, record_id: str, decision: str, note: str) -> dict[str, str]:
        self.allowed.check(record_id, decision)
        with self.lock:
            append_decision(self.run, record_id, decision, note)
            return load_decisions(self.run)


class ReviewHandler(BaseHTTPRequestHandler):
    server: ReviewServer

    def log_message(self, format: str, *args: Any) -> None:  # `format`: the base class's name
        log.debug("review: " + format, *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode("utf-8"), "application/json")

    def _trusted(self) -> bool:
        """The request names this server (Host) and, if it says where it comes from (Origin), comes from it."""
        port = self.server.server_address[1]
        hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        origin = self.headers.get("Origin")
        if self.headers.get("Host") not in hosts or (
            origin is not None and origin not in {f"http://{h}" for h in hosts}
        ):
            self._json(HTTPStatus.FORBIDDEN, {"error": "this server only answers pages it served itself on 127.0.0.1"})
            return False
        return True

    def do_GET(self) -> None:  # http.server's naming
        if not self._trusted():
            return
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, self.server.page(), "text/html; charset=utf-8")
        elif path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        elif path == "/api/decisions":
            self._json(HTTPStatus.OK, load_decisions(self.server.run))
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})

    def do_POST(self) -> None:
        if not self._trusted():
            return
        if self.path.split("?", 1)[0] != "/api/decisions":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {self.path}"})
            return
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send the decision as application/json"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length <= 0 or length > MAX_BODY:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "empty or oversized body"})
            return
        try:
            body = json.loads(self.rfile.read(length))
            record_id, decision = str(body["id"]), str(body["decision"])
            note = str(body.get("note", ""))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f'expected {{"id": ..., "decision": ...}}: {exc}'})
            return
        try:
            decisions = self.server.decide(record_id, decision, note)
        except ReviewError as exc:
            self._json(HTTPStatus.CONFLICT, {"error": str(exc)})
            return
        except SftforgeError as exc:  # the decision could not be stored (disk full, permissions)
            log.error("review: %s", exc)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(exc)})
            return
        log.info("review: %s %s", decision, record_id)
        self._json(HTTPStatus.OK, {"ok": True, "decisions": len(decisions)})
