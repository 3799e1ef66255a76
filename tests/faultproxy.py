"""A fault-injecting HTTP proxy for the OpenAI-compatible backend's tests.

It sits between sftforge and a real server and, on a schedule, answers 429 with Retry-After, 500, hangs past the
client's timeout, cuts a response body short, or returns malformed JSON; other requests are forwarded unchanged
(or, with `strip_logprobs`, without the logprobs, as a server that does not implement them answers).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        schedule: list[str],
        hang_seconds: float = 10.0,
        reject_response_format: bool = False,
        strip_logprobs: bool = False,
    ) -> None:
        self.reject_response_format = reject_response_format
        self.strip_logprobs = strip_logprobs  # answer as a server without logprobs support would
        self.upstream = urlsplit(upstream)
        self.schedule = list(schedule)
        self.hang_seconds = hang_seconds
        self.counts: Counter[str] = Counter()
        self.auth: list[str | None] = []
        self._lock = threading.Lock()
        self._n = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._forward(b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy._lock:
                    mode = proxy.schedule[proxy._n] if proxy._n < len(proxy.schedule) else "pass"
                    proxy._n += 1
                    proxy.counts[mode] += 1
                    proxy.auth.append(self.headers.get("Authorization"))
                if proxy.reject_response_format and b"response_format" in body:
                    with proxy._lock:
                        proxy.counts["rejected_response_format"] += 1
                    self._reply(400, b'{"error": "unsupported parameter: response_format"}')
                elif mode == "429":
                    self._reply(429, b'{"error": "slow down"}', {"Retry-After": "1"})
                elif mode == "500":
                    self._reply(500, b'{"error": "upstream exploded"}')
                elif mode == "401":
                    self._reply(401, b'{"error": "bad key"}')
                elif mode == "hang":
                    time.sleep(proxy.hang_seconds)
                    self.close_connection = True
                elif mode == "malformed":
                    self._reply(200, b'{"choices": [{"message": {"content": "unterminated')
                elif mode == "truncate":
                    status, data, _ = self._upstream(body)
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self._forward(body)

            def _upstream(self, body: bytes) -> tuple[int, bytes, str]:
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=300)
                conn.request(self.command, self.path, body=body or None, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                return resp.status, data, resp.getheader("Content-Type", "application/json")

            def _forward(self, body: bytes) -> None:
                status, data, ctype = self._upstream(body)
                if proxy.strip_logprobs and status == 200 and self.command == "POST":
                    reply = json.loads(data)
                    for choice in reply.get("choices", []):
                        choice.pop("logprobs", None)
                    data = json.dumps(reply).encode()
                self._reply(status, data, {"Content-Type": ctype})

            def _reply(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {"Content-Type": "application/json"}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
