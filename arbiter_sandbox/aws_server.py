"""The AWS side of the embedded sandbox: moto's server app behind control routes, fault injection and the
ECS overlay, served threaded on 127.0.0.1 in this process (so the overlay can read and edit moto's backends).

    sandbox = AwsSandbox()
    endpoint = sandbox.start()   # "http://127.0.0.1:PORT": boto3 endpoint_url=, or AWS_ENDPOINT_URL for a CLI
    sandbox.faults.add({"kind": "throttle", "operation": "ecs:DescribeServices", "count": 2})
    sandbox.ecs.fail_next_deployment("backend")
    sandbox.reset()
    sandbox.stop()

A request goes: ``/_sandbox/`` control routes -> faults -> ECS overlay -> moto. Control routes (JSON):
``GET /_sandbox/health``; ``GET|POST|DELETE /_sandbox/faults``; ``POST /_sandbox/reset``;
``POST /_sandbox/ecs/progress`` ``{"mode", "step_seconds"}``; ``POST /_sandbox/ecs/task-outcome``;
``POST /_sandbox/ecs/fail-deployment``; ``GET /_sandbox/ecs/state``. ``/moto-api/...`` goes straight to moto
(no faults); its reset also resets the overlay.

Faults see the operation as "DescribeServices" (JSON ``X-Amz-Target``, CBOR path, query ``Action``) or
"GET /path" (REST), and the service as the SigV4 signing name ("ecs", "rds", "elasticloadbalancing",
"monitoring"...), so a rule's operation may be "DescribeServices", "ecs:DescribeServices" or "rds:*".
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from werkzeug.serving import BaseWSGIServer, make_server

from arbiter_sandbox.ecs_overlay import TARGET_PREFIX, EcsOverlay
from arbiter_sandbox.ecs_tasks import ProgressMode, Where
from arbiter_sandbox.faults import Fault, FaultPlan, FaultRuleError, apply_latency

# moto reads its settings when it is first imported, so this must happen before any moto import; moto is
# therefore only imported inside functions in the sandbox modules. Certificates are ISSUED at once.
os.environ.setdefault("MOTO_ACM_VALIDATION_WAIT", "0")

log = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
StartResponse = Callable[..., Any]
Reply = tuple[int, dict[str, str], bytes]
_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_CBOR_PATH = re.compile(r"^/service/[^/]+/operation/([^/]+)$")
_REST_XML = {"s3", "route53", "cloudfront"}
_ECR_TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class AwsCall:
    """What the sandbox needs to know about one AWS API request."""

    operation: str  # "DescribeServices", or "METHOD /path" for REST services
    service: str | None  # signing name from the SigV4 credential scope: "ecs", "rds", "monitoring", ...
    region: str
    protocol: str  # json | cbor | query | ec2 | rest-xml | rest-json
    access_key: str | None
    target: str | None


def describe_call(environ: dict[str, Any]) -> AwsCall:
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    access_key, region, service = (scope[1], scope[2], scope[3]) if scope else (None, DEFAULT_REGION, None)
    target = environ.get("HTTP_X_AMZ_TARGET")
    path = environ.get("PATH_INFO", "")
    if target:
        return AwsCall(target.rsplit(".", 1)[-1], service, region, "json", access_key, target)
    cbor = _CBOR_PATH.match(path)
    if cbor and environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":
        return AwsCall(cbor[1], service, region, "cbor", access_key, None)
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if not action and str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        action = parse_qs(read_body(environ).decode("utf-8", "replace")).get("Action")
    if action:
        return AwsCall(action[0], service, region, "ec2" if service == "ec2" else "query", access_key, None)
    protocol = "rest-xml" if service in _REST_XML else "rest-json"
    return AwsCall(f"{environ.get('REQUEST_METHOD', 'GET')} {path}", service, region, protocol, access_key, None)


# Operations that only read, by name (query / JSON protocols); a REST request reads when it is a GET or a HEAD.
_READS = ("Describe", "List", "Get", "Head", "Query", "Scan", "Search", "Lookup", "BatchGet", "Check", "Validate")


def mutates(call: AwsCall) -> bool:
    if call.protocol in ("rest-xml", "rest-json"):
        return not call.operation.startswith(("GET ", "HEAD "))
    return not call.operation.startswith(_READS)


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back so that moto can read it again."""
    if "sandbox.body" not in environ:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        stream = environ["wsgi.input"]
        body = stream.read(length) if length > 0 else (stream.read() if environ.get("wsgi.input_terminated") else b"")
        environ["sandbox.body"] = body
        environ["CONTENT_LENGTH"] = str(len(body))
    environ["wsgi.input"] = io.BytesIO(environ["sandbox.body"])
    return bytes(environ["sandbox.body"])


def account_of(call: AwsCall, environ: dict[str, Any]) -> str:
    """The account moto resolves for this request (same order of precedence as moto's BaseResponse)."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return str(environ["HTTP_X_MOTO_ACCOUNT_ID"])
    from moto.iam.models import get_account_id_from

    return get_account_id_from(call.access_key or "AKIAEXAMPLE")


# -- injected faults in each protocol's error shape (botocore classifies them as AWS's own) ------------
def fault_reply(fault: Fault, call: AwsCall) -> Reply:
    throttle = fault.kind == "throttle"
    status = 400 if throttle else fault.status
    p = call.protocol
    if throttle:
        codes = {"ec2": "RequestLimitExceeded", "query": "Throttling", "rest-xml": "Throttling"}
        code = codes.get(p, "ThrottlingException")
        if call.service == "s3":
            code, status = "SlowDown", 503
    elif status == 503:
        code = "Unavailable" if p == "ec2" else "ServiceUnavailable"
    else:
        code = "InternalError" if p == "ec2" or call.service == "s3" else "InternalFailure"
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": code}
    msg = escape(fault.message)
    if p in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message": fault.message}).encode()
        return status, {**headers, "Content-Type": "application/x-amz-json-1.1"}, body
    if p == "cbor":
        body = _cbor_map({"__type": code, "message": fault.message})
        return status, {**headers, "Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}, body
    if p == "ec2":
        xml = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{msg}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
    elif call.service == "s3":
        xml = f"<Error><Code>{code}</Code><Message>{msg}</Message><RequestId>{request_id}</RequestId></Error>"
    else:
        kind = "Sender" if throttle else "Receiver"
        xml = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{msg}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    return status, {**headers, "Content-Type": "text/xml"}, xml.encode()


def _cbor_map(data: dict[str, str]) -> bytes:
    """Just enough CBOR (a map of text strings) for errors of smithy-rpc-v2-cbor services (CloudWatch)."""

    def head(major: int, n: int) -> bytes:
        if n < 24:
            return bytes([major << 5 | n])
        size, extra = next((s, e) for s, e in ((1, 24), (2, 25), (4, 26), (8, 27)) if n < 256**s)
        return bytes([major << 5 | extra]) + n.to_bytes(size, "big")

    out = bytearray(head(5, len(data)))
    for key, value in data.items():
        for text in (key.encode(), value.encode()):
            out += head(3, len(text)) + text
    return bytes(out)


def call_app(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> Reply:
    """Run a WSGI app and collect its answer (to rewrite moto's responses)."""
    seen: dict[str, Any] = {}
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
        seen["status"], seen["headers"] = int(status.split(" ", 1)[0]), dict(headers)
        return chunks.append

    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return seen["status"], seen["headers"], b"".join(chunks)


def _send(start_response: StartResponse, reply: Reply) -> list[bytes]:
    status, headers, body = reply
    start_response(f"{status} {_REASONS.get(status, 'Error')}", [*headers.items(), ("Content-Length", str(len(body)))])
    return [body]


def _json_reply(status: int, data: Any, content_type: str = "application/json") -> Reply:
    return status, {"Content-Type": content_type, "x-amzn-RequestId": str(uuid.uuid4())}, json.dumps(data).encode()


class AwsSandbox:
    """moto + faults + the ECS overlay on one local port; everything in this process."""

    name = "aws"

    def __init__(self, progress: ProgressMode = "per-call", step_seconds: float = 2.0, port: int = 0) -> None:
        self.faults = FaultPlan()
        self.ecs = EcsOverlay(progress, step_seconds)
        self._port = port
        # The signing names (credential scope) of the services that received a writing request since
        # `touched.clear()`: a reset may keep the state of services nobody wrote to (see LocalSandbox.reset).
        self.touched: set[str] = set()
        self._moto: Callable[..., Iterable[bytes]] | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        # ECR bridge: a RegistryBridge (sandbox/registry.py) attached by tests that run a real registry; it
        # answers ECR's auth token and keeps ECR's image list in step with the registry. None: plain moto.
        self.registry: Any = None

    # -- lifecycle ----------------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the AWS sandbox is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> str:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        class QuietHandler(MotoRequestHandler):
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                return  # one line per AWS call drowns test output; errors are still logged

        from moto import settings

        from arbiter_sandbox.moto_fixes import apply as apply_moto_fixes

        apply_moto_fixes()

        if os.environ.get("MOTO_ACM_VALIDATION_WAIT") == "0":  # moto was imported before us: same effect
            settings.ACM_VALIDATION_WAIT = 0
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", self._port, self, threaded=True, request_handler=QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-sandbox", daemon=True)
        self._thread.start()
        return self.endpoint_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def reset(self, keep: frozenset[str] = frozenset()) -> float:
        """Forget every AWS resource (but those of the moto backends named in ``keep``), overlay state, fault and
        moto state transition; returns seconds taken."""
        from moto.core.base_backend import BackendDict, backend_lock
        from moto.core.model_instances import reset_model_data
        from moto.moto_api import state_manager
        from moto.moto_api._internal.models import moto_api_backend

        started = time.perf_counter()
        with self.ecs.lock:  # no ECS request half-way through while its backends vanish
            if not keep:
                moto_api_backend.reset()
            else:  # what moto's reset does, backend by backend, leaving out the kept ones
                with backend_lock:
                    for backend in [b for b in BackendDict._instances if b.service_name not in keep]:
                        for account_backend in backend.values():
                            account_backend.reset()
                        backend.clear()
                        BackendDict._instances.remove(backend)
                reset_model_data()
            for model in state_manager.get_registered_models():  # they survive moto's own reset
                state_manager.unset_transition(model)
            self.ecs.reset()
        self.faults.clear()
        return time.perf_counter() - started

    # -- WSGI -------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        assert self._moto is not None
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox/"):
            return _send(start_response, self._control(environ))
        if path.startswith("/moto-api"):
            if path.rstrip("/") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
                self.ecs.reset()  # else the overlay would keep describing services moto has forgotten
            return self._moto(environ, start_response)
        call = describe_call(environ)
        if mutates(call):
            self.touched.add(call.service or "?")
        fault = self.faults.decide(call.operation, call.service)
        apply_latency(fault)
        if fault is not None and fault.kind != "latency":
            return _send(start_response, fault_reply(fault, call))
        if self.registry is not None and call.target and call.target.startswith(_ECR_TARGET_PREFIX):
            reply = self.registry.handle(call, environ, self._moto)
            if reply is not None:
                return _send(start_response, reply)
        if call.target and call.target.startswith(TARGET_PREFIX):
            reply = self._ecs(environ, call)
            if reply is not None:
                return _send(start_response, reply)
        return self._moto(environ, start_response)

    def _ecs(self, environ: dict[str, Any], call: AwsCall) -> Reply | None:
        assert self._moto is not None
        moto_app = self._moto
        body = read_body(environ)
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return None  # moto answers malformed JSON as it does
        where = Where(account_of(call, environ), call.region)

        def moto(new_params: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
            env = dict(environ)
            data = body if new_params is None else json.dumps(new_params).encode()
            env["wsgi.input"], env["CONTENT_LENGTH"] = io.BytesIO(data), str(len(data))
            status, _, raw = call_app(moto_app, env)
            try:
                return status, json.loads(raw or b"{}")
            except ValueError:
                return status, {"__type": "InternalFailure", "message": raw.decode("utf-8", "replace")[:500]}

        try:
            answer = self.ecs.handle(call.operation, params, where, moto)
        except Exception as exc:  # an overlay bug must surface as an AWS-shaped 500, not a dropped socket
            log.exception("ECS overlay failed on %s", call.operation)
            answer = 500, {"__type": "InternalFailure", "message": f"sandbox ECS overlay error: {exc!r}"}
        read_body(environ)  # rewind: moto may still answer (overlay passed) and must see the whole body
        if answer is None:
            return None
        return _json_reply(answer[0], answer[1], "application/x-amz-json-1.1")

    # -- control routes -----------------------------------------------------------------------------
    def _control(self, environ: dict[str, Any]) -> Reply:
        route = (environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "").rstrip("/"))
        try:
            body = json.loads(read_body(environ) or b"null")
            data = body if isinstance(body, dict) else {}
            return _json_reply(200, self._route(route, data))
        except _NoRoute:
            return _json_reply(404, {"error": f"no control route {route[0]} {route[1]}"})
        except (FaultRuleError, ValueError, TypeError) as exc:
            return _json_reply(400, {"error": str(exc)})

    def _route(self, route: tuple[str, str], data: dict[str, Any]) -> Any:
        if route == ("GET", "/_sandbox/health"):
            return {"ok": True, "name": self.name}
        if route == ("GET", "/_sandbox/faults"):
            return {"rules": self.faults.rules()}
        if route == ("POST", "/_sandbox/faults"):
            return self.faults.add(data).public()
        if route == ("DELETE", "/_sandbox/faults"):
            self.faults.clear()
            return {"ok": True}
        if route == ("POST", "/_sandbox/reset"):
            return {"ok": True, "seconds": round(self.reset(), 4)}
        if route == ("POST", "/_sandbox/ecs/progress"):
            return self.ecs.set_progress(data.get("mode", "per-call"), data.get("step_seconds"))
        if route == ("POST", "/_sandbox/ecs/task-outcome"):
            return self.ecs.task_outcome(**data)
        if route == ("POST", "/_sandbox/ecs/fail-deployment"):
            return self.ecs.fail_next_deployment(**data)
        if route == ("GET", "/_sandbox/ecs/state"):
            return self.ecs.state()
        raise _NoRoute(route)


class _NoRoute(LookupError):
    """No control route for this method and path."""
