"""A small threaded HTTP server base for the sandbox's stand-ins (Stripe, Arbiter API).

Each stand-in subclasses :class:`StandInServer` and implements :meth:`StandInServer.handle`. The base
serves on 127.0.0.1 only, runs in a daemon thread, logs every request, and answers the shared control
routes under ``/_sandbox/``:

- ``GET /_sandbox/health`` -> ``{"ok": true}``
- ``GET|POST|DELETE /_sandbox/faults`` -> list / add a rule (JSON body, see :mod:`.faults`) / clear
- ``GET /_sandbox/requests`` -> the request log; ``DELETE /_sandbox/requests`` clears it
- ``GET /_sandbox/stats`` -> ``{"in_flight": n, "max_in_flight": n, "total": n}``
- ``POST /_sandbox/reset`` -> :meth:`StandInServer.reset`

Faults are decided before :meth:`handle` runs, with the operation name ``"METHOD /path"``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from arbiter_sandbox.faults import Fault, FaultPlan, FaultRuleError, apply_latency


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode("utf-8"), keep_blank_values=True)


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str -> as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        if self.body is None:
            return b""
        return json.dumps(self.body).encode("utf-8")


class StandInServer:
    """Base class: subclasses implement ``handle`` (and may extend ``reset`` / ``fault_response``)."""

    name = "stand-in"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.faults = FaultPlan()
        self.request_log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0
        self.total_requests = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError(f"{self.name} is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _serve(self) -> None:
                server._dispatch(self)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _serve

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        httpd = self._httpd
        self._thread = threading.Thread(
            target=lambda: httpd.serve_forever(poll_interval=0.05), name=self.name, daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def reset(self) -> None:
        """Forget all state (subclasses extend), faults and the request log."""
        self.faults.clear()
        with self._log_lock:
            self.request_log.clear()
            self.max_in_flight = 0
            self.total_requests = 0

    # -- to implement ----------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def fault_response(self, fault: Fault, request: Request) -> Response:
        """The protocol's error body for an injected fault; subclasses may override."""
        status = 429 if fault.kind == "throttle" else fault.status
        return Response(status, {"error": {"message": fault.message, "type": "api_error"}})

    # -- machinery -------------------------------------------------------------------------
    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        request = Request(
            method=h.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
        )
        if request.path.startswith("/_sandbox/"):
            response = self._control(request)
        else:
            response = self._serve_app(request)
        payload = response.encoded()
        try:
            h.send_response(response.status)
            h.send_header("Content-Type", response.content_type)
            h.send_header("Content-Length", str(len(payload)))
            for key, value in response.headers.items():
                h.send_header(key, value)
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); that is its business

    def _serve_app(self, request: Request) -> Response:
        with self._log_lock:
            self._in_flight += 1
            self.total_requests += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        started = time.monotonic()
        try:
            fault = self.faults.decide(f"{request.method} {request.path}", self.name)
            apply_latency(fault)
            if fault is not None and fault.kind != "latency":
                response = self.fault_response(fault, request)
            else:
                try:
                    response = self.handle(request)
                except Exception as exc:  # a stand-in bug must show as a 500, not a hung socket
                    response = Response(500, {"error": {"message": f"stand-in error: {exc}", "type": "api_error"}})
            return response
        finally:
            with self._log_lock:
                self._in_flight -= 1
                self.request_log.append(
                    {
                        "method": request.method,
                        "path": request.path,
                        "query": request.query,
                        "idempotency_key": request.headers.get("idempotency-key"),
                        "status": response.status if "response" in locals() else 500,
                        "started": started,
                        "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    }
                )

    def _control(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route == ("GET", "/_sandbox/health"):
            return Response(200, {"ok": True, "name": self.name})
        if route == ("GET", "/_sandbox/faults"):
            return Response(200, {"rules": self.faults.rules()})
        if route == ("POST", "/_sandbox/faults"):
            try:
                rule = self.faults.add(request.json())
            except (FaultRuleError, ValueError) as exc:
                return Response(400, {"error": str(exc)})
            return Response(200, rule.public())
        if route == ("DELETE", "/_sandbox/faults"):
            self.faults.clear()
            return Response(200, {"ok": True})
        if route == ("GET", "/_sandbox/requests"):
            with self._log_lock:
                return Response(200, {"requests": list(self.request_log)})
        if route == ("DELETE", "/_sandbox/requests"):
            with self._log_lock:
                self.request_log.clear()
            return Response(200, {"ok": True})
        if route == ("GET", "/_sandbox/stats"):
            with self._log_lock:
                return Response(
                    200,
                    {"in_flight": self._in_flight, "max_in_flight": self.max_in_flight, "total": self.total_requests},
                )
        if route == ("POST", "/_sandbox/reset"):
            self.reset()
            return Response(200, {"ok": True})
        return self.control(request)

    def control(self, request: Request) -> Response:
        """Stand-in specific control routes under /_sandbox/; subclasses extend."""
        return Response(404, {"error": f"no control route {request.method} {request.path}"})
