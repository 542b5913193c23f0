"""A stand-in for the Arbiter AI app behind the ALB: the FastAPI backend (``/health``, ``/api/v1/*``) and ``/``.

It twins gndumbri/arbiter-ai at its newest snapshot (4bb9c8a); each behaviour's comment names the file it follows.
Framework behaviour is FastAPI 0.129.0 / Starlette 0.52.1 (``backend/uv.lock``): ``{"detail": ...}`` bodies, the
422 list, the 307 trailing-slash redirect, the body read and JSON-decoded before the auth dependency runs and
validated after it. Bearer, user and webhook-signature checks live in :mod:`arbiter_sandbox.api_auth`.

Control routes (besides the base's ``/_sandbox/*``): ``GET|POST /_sandbox/mode`` (a JSON subset of :class:`Modes`)
and ``POST /_sandbox/secret`` with ``nextauth_secret`` and/or ``webhook_secret`` (never logged nor echoed).
The base's request log keeps only method, path, query and status: no header is ever logged.
"""

from __future__ import annotations

import email.message
import fnmatch
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

from pydantic import BaseModel, Field, ValidationError
from pydantic_core import to_jsonable_python

from arbiter_sandbox.api_auth import (
    INTERNAL_ERROR,
    Accounts,
    AuthFailure,
    TokenError,
    authenticate,
    encode_hs256,
    mint_token,
    sign_stripe_payload,
    stripe_event,
    verify_token,
)
from arbiter_sandbox.faults import Fault
from arbiter_sandbox.httpbase import Request, Response, StandInServer

__all__ = ["ArbiterApiStandIn", "TokenError", "encode_hs256", "mint_token", "sign_stripe_payload", "verify_token"]

# Names as the real seed writes them (backend/scripts/seed_catalog.py: "Catan (6th Ed)", ...): run against the real
# backend, a smoke session for "Catan" never matched its seeded row.
DEFAULT_READY_GAMES = ("Catan (6th Ed)", "Dungeons & Dragons 5th Edition", "Ticket to Ride")
# gndumbri/arbiter-ai backend/app/api/routes/judge.py READY_CATALOG_STATUSES (also sessions.py)
READY_STATUSES = ("READY", "INDEXED", "COMPLETE", "PUBLISHED")
# gndumbri/arbiter-ai backend/app/api/rate_limit.py RATE_LIMITS["session"]: (max per UTC day)
SESSION_LIMITS = {"FREE": 10, "PRO": 50}
# gndumbri/arbiter-ai backend/alembic/versions/4fc7b20cadfa: subscription_tiers.daily_query_limit, -1 = unlimited
QUERY_LIMITS = {"FREE": 5, "PRO": -1}
# Stand-in seed rows (name, slug, publisher_display_name, version), from backend/scripts/seed_catalog.py's list
SEED_CATALOG = (
    ("Catan (6th Ed)", "catan-6e", "Catan Studio", "6th Ed"),
    ("Dungeons & Dragons 5th Edition", "dnd-5e", "Wizards of the Coast", "2024"),
    ("Magic: The Gathering", "mtg", "Wizards of the Coast", "2024"),
    ("Ticket to Ride", "ticket-to-ride", "Days of Wonder", "2024"),
    ("Wingspan (2nd Print)", "wingspan", "Stonemaier Games", "2nd Print"),
)
DATABASE_ROUTES = ("/api/v1/catalog", "/api/v1/users", "/api/v1/sessions", "/api/v1/judge")
Handler = Callable[[Request], Response]
M = TypeVar("M", bound=BaseModel)

FRONTEND_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Arbiter AI</title></head>
<body><div id="__next"><h1>Arbiter AI</h1><p>Sandbox stand-in frontend.</p></div></body></html>
"""


# -- request bodies: twins of gndumbri/arbiter-ai backend/app/models/schemas.py ------------------------
class SessionCreate(BaseModel):
    game_name: str = Field(..., min_length=1, max_length=200)
    persona: str | None = None
    system_prompt_override: str | None = None
    active_ruleset_ids: list[uuid.UUID] | None = None


class JudgeHistoryTurn(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(..., min_length=1, max_length=2000)


class JudgeQuery(BaseModel):
    session_id: uuid.UUID
    query: str = Field(..., min_length=1, max_length=500)
    game_name: str | None = None
    ruleset_ids: list[uuid.UUID] | None = None
    history: list[JudgeHistoryTurn] | None = Field(default=None, max_length=8)


class _Answer(Exception):
    """Ends a request early with ``response`` (FastAPI's HTTPException / RequestValidationError)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _detail(status: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, {"detail": detail}, headers=headers or {})


def _read_body(request: Request) -> Any:
    """FastAPI 0.129.0 fastapi/routing.py get_request_handler: read and JSON-decode before any dependency runs."""
    if not request.body:
        return None
    content_type = request.headers.get("content-type")
    if content_type:  # only application/json and application/*+json are decoded; anything else stays bytes
        message = email.message.Message()
        message["content-type"] = content_type
        subtype = message.get_content_subtype()
        if message.get_content_maintype() != "application" or not (subtype == "json" or subtype.endswith("+json")):
            return request.body
    try:
        return json.loads(request.body)
    except json.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ["body", exc.pos], "msg": "JSON decode error", "input": {}}
        raise _Answer(_detail(422, [{**error, "ctx": {"error": exc.msg}}])) from None
    except Exception:  # bad UTF-8, too deep: FastAPI's catch-all
        raise _Answer(_detail(400, "There was an error parsing the body")) from None


def _validate(model: type[M], body: Any) -> M:
    """fastapi/dependencies/utils.py request_body_to_args + fastapi/_compat/v2.py ModelField.validate."""
    if body is None:  # no body, or JSON null: get_missing_field_error(("body",))
        raise _Answer(_detail(422, [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]))
    try:
        return model.model_validate(body, from_attributes=True)
    except ValidationError as exc:
        errors = [{**error, "loc": ["body", *error["loc"]]} for error in exc.errors(include_url=False)]
        try:  # fastapi/exception_handlers.py: jsonable_encoder(exc.errors()); bytes input must be UTF-8 there too
            raise _Answer(_detail(422, to_jsonable_python(errors, fallback=str))) from None
        except ValueError:
            raise _Answer(Response(500, INTERNAL_ERROR)) from None


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# -- catalog ------------------------------------------------------------------------------------
def _catalog_entry(name: str, slug: str, publisher: str, version: str, ready: bool) -> dict[str, Any]:
    # Stable ids, so a session's active_ruleset_ids survive a mode change. license_type as seed_catalog.py sets it
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"arbiter-sandbox/catalog/{slug}")),
        "game_name": name,
        "game_slug": slug,
        "publisher_name": publisher,
        "version": version,
        "status": "READY" if ready else "UPLOAD_REQUIRED",
        "license_type": "PROPRIETARY",
        "attribution_text": None,
    }


def _catalog(modes: dict[str, Any]) -> list[dict[str, Any]]:
    """The official rulesets: the seed, READY where the game is in ``ready_games``, plus any other ready game."""
    if modes["catalog_empty"]:
        return []
    ready = {game.lower() for game in modes["ready_games"]}
    entries = [_catalog_entry(n, s, p, v, n.lower() in ready) for n, s, p, v in SEED_CATALOG]
    for game in modes["ready_games"]:
        if game.lower() not in {e["game_name"].lower() for e in entries}:
            slug = re.sub(r"[^a-z0-9]+", "-", game.lower()).strip("-") or "game"
            # "Community Catalog" is the publisher seed_catalog.py upserts; version "1.0" is its default
            entries.append(_catalog_entry(game, slug, "Community Catalog", "1.0", True))
    # gndumbri/arbiter-ai backend/app/api/routes/catalog.py: chat-ready statuses first, then by game name
    return sorted(entries, key=lambda e: (e["status"] not in READY_STATUSES, e["game_name"]))


def _verdict(game: str) -> dict[str, Any]:
    """A JudgeVerdict (schemas.py) as the mock providers would give it; the wording is the stand-in's own."""
    citation = {"source": f"{game} rulebook", "page": 1, "section": None, "snippet": "Sandbox rule text."}
    return {
        "verdict": f"Sandbox ruling for {game}: follow the rulebook section cited.",
        "reasoning_chain": "Matched the question to the cited rule.",
        "confidence": 0.9,
        "confidence_reason": "Answered from an official ruleset.",
        "citations": [{**citation, "is_official": True}],
        "conflicts": None,
        "follow_up_hint": None,
        "query_id": str(uuid.uuid4()),
        "model": "mock-llm-v1",  # backend/app/core/providers/mock_llm.py: the LLM_PROVIDER=mock model name
    }


# -- the server ---------------------------------------------------------------------------------
@dataclass
class Modes:
    health_status: int = 200  # not 200: /health answers it, as something in front of the app would (e.g. the ALB)
    reject_tokens: bool = False
    delay_ms: int = 0
    down: bool = False
    error_routes: list[str] = field(default_factory=list)
    database_up: bool = True
    redis_up: bool = True
    catalog_empty: bool = False  # a fresh environment before `python -m scripts.seed_catalog`
    ready_games: list[str] = field(default_factory=lambda: list(DEFAULT_READY_GAMES))
    tier: str = "FREE"  # every signed-in user's subscription tier
    app_env: str = "development"  # the backend's APP_ENV


def _is_list_of(value: Any, check: Callable[[str], bool]) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and check(v) for v in value)


# Each mode's check and the error it raises; anything a test could misuse is refused
_MODE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "health_status": (lambda v: type(v) is int and 100 <= v <= 599, "an HTTP status code"),
    "delay_ms": (lambda v: type(v) in (int, float) and 0 <= v <= 120_000, "a number between 0 and 120000"),
    "error_routes": (lambda v: _is_list_of(v, lambda r: r.startswith("/")), "a list of paths starting with /"),
    "ready_games": (lambda v: _is_list_of(v, lambda g: bool(g.strip())), "a list of game names"),
    "tier": (lambda v: v in ("FREE", "PRO"), "FREE or PRO"),
    "app_env": (lambda v: isinstance(v, str), "a string"),
    **{
        flag: ((lambda v: isinstance(v, bool)), "a boolean")
        for flag in ("reject_tokens", "down", "database_up", "redis_up", "catalog_empty")
    },
}


def _validated_modes(current: Modes, changes: dict[str, Any]) -> Modes:
    """Apply ``changes`` to a copy of ``current``; raise ValueError on anything invalid or unknown."""
    unknown = set(changes) - set(asdict(current))
    if unknown:
        raise ValueError(f"unknown mode(s): {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        check, expected = _MODE_CHECKS[name]
        if not check(value):
            raise ValueError(f"{name} must be {expected}")
    copied = {k: list(v) if isinstance(v, list) else v for k, v in changes.items()}
    if "delay_ms" in copied:
        copied["delay_ms"] = int(copied["delay_ms"])
    lists = {"error_routes": list(current.error_routes), "ready_games": list(current.ready_games)}
    return replace(current, **{**lists, **copied})


class ArbiterApiStandIn(StandInServer):
    """The Arbiter frontend + backend as seen through the ALB; see the module docstring for routes."""

    name = "arbiter-api"

    def __init__(
        self,
        nextauth_secret: str,
        webhook_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self._initial_secrets = (nextauth_secret, webhook_secret)
        self._nextauth_secret = nextauth_secret
        self._webhook_secret = webhook_secret
        self.clock: Callable[[], float] = time.time  # tests may move time (expiry, UTC day rollover)
        # Guards modes, secrets and the app's data. Held only to copy or update state, never while sleeping,
        # so that delayed requests really overlap.
        self._state_lock = threading.Lock()
        self._modes = Modes()
        self.webhook_events: list[dict[str, Any]] = []
        self.accounts = Accounts()  # the users table
        self._sessions: dict[str, dict[str, Any]] = {}  # the sessions table, by id
        self._session_counters: dict[tuple[str, str], list[float]] = {}  # Redis rate:session:{user}:{day} -> [n, exp]
        self._queries: dict[str, list[float]] = {}  # query_audit_log: user id -> created_at of each success
        self._routes: dict[str, dict[str, Handler]] = {
            "/health": {"GET": self._health},
            "/": {"GET": self._frontend},
            "/api/v1/catalog/": {"GET": self._catalog},
            "/api/v1/users/me": {"GET": self._me},
            "/api/v1/sessions": {"POST": self._create_session},
            "/api/v1/judge": {"POST": self._judge},
            "/api/v1/billing/webhooks/stripe": {"POST": self._stripe_webhook},
        }

    # -- Python control ----------------------------------------------------------------------
    def set_mode(self, **changes: Any) -> dict[str, Any]:
        """Change some modes (validated as over HTTP); returns all modes."""
        with self._state_lock:
            self._modes = _validated_modes(self._modes, changes)
            return asdict(self._modes)

    def mode(self) -> dict[str, Any]:
        with self._state_lock:
            return asdict(self._modes)

    def set_secret(self, nextauth_secret: str) -> None:
        """Rotate NEXTAUTH_SECRET: tokens signed with the previous one are refused from now on."""
        if not isinstance(nextauth_secret, str) or not nextauth_secret:
            raise ValueError("nextauth_secret must be a non-empty string")
        with self._state_lock:
            self._nextauth_secret = nextauth_secret

    def set_webhook_secret(self, webhook_secret: str | None) -> None:
        with self._state_lock:
            self._webhook_secret = webhook_secret

    def reset(self) -> None:
        """Forget users, sessions, counters, received events and modes; restore the secrets and the clock."""
        with self._state_lock:
            self._modes = Modes()
            self._nextauth_secret, self._webhook_secret = self._initial_secrets
            self.clock = time.time
            for table in (self.webhook_events, self._sessions, self._session_counters, self._queries):
                table.clear()
        self.accounts.clear()
        super().reset()

    def control(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route == ("GET", "/_sandbox/mode"):
            return Response(200, self.mode())
        if route == ("POST", "/_sandbox/mode"):
            try:
                changes = request.json()
                if not isinstance(changes, dict):
                    raise ValueError("modes are a JSON object")
                return Response(200, self.set_mode(**changes))
            except ValueError as exc:
                return Response(400, {"error": str(exc)})
        if route == ("POST", "/_sandbox/secret"):
            return self._control_secret(request)
        return super().control(request)

    def _control_secret(self, request: Request) -> Response:
        # Error messages here are fixed strings: nothing derived from the body, which holds secrets
        try:
            data = request.json()
        except ValueError:
            return Response(400, {"error": "body must be JSON"})
        if not isinstance(data, dict) or not data or set(data) - {"nextauth_secret", "webhook_secret"}:
            return Response(400, {"error": "expected an object with nextauth_secret and/or webhook_secret"})
        for key, value in data.items():
            if not isinstance(value, str) or not value:
                return Response(400, {"error": f"{key} must be a non-empty string"})
        if "nextauth_secret" in data:
            self.set_secret(data["nextauth_secret"])
        if "webhook_secret" in data:
            self.set_webhook_secret(data["webhook_secret"])
        return Response(200, {"ok": True, "updated": sorted(data)})

    # -- dispatch ------------------------------------------------------------------------------
    def fault_response(self, fault: Fault, request: Request) -> Response:
        if fault.kind == "throttle":
            return _detail(429, fault.message, {"Retry-After": "1"})
        return _detail(fault.status, fault.message)

    def handle(self, request: Request) -> Response:
        modes = self.mode()  # a snapshot: a mode change mid-request must not tear this response
        if modes["delay_ms"]:
            time.sleep(modes["delay_ms"] / 1000.0)  # in this request's own thread, no lock held
        if modes["down"]:
            return _detail(503, "Service Unavailable")  # nothing healthy behind the ALB
        if any(fnmatch.fnmatchcase(request.path, pattern) for pattern in modes["error_routes"]):
            return Response(500, INTERNAL_ERROR)  # an unhandled exception, answered by ErrorHandlerMiddleware
        if not modes["database_up"] and request.path.startswith(DATABASE_ROUTES):
            # The real backend with its database down (measured): every route that queries it raises, and the
            # ErrorHandlerMiddleware answers 500 (backend/app/api/middleware.py); /health says "degraded".
            return Response(500, INTERNAL_ERROR)
        methods = self._routes.get(request.path)
        if methods is None:
            return self._redirect_slash(request) or _detail(404, "Not Found")
        # Starlette serves HEAD wherever it serves GET, and says so in Allow
        method = "GET" if request.method == "HEAD" and "GET" in methods else request.method
        if method not in methods:
            allow = sorted({*methods, "HEAD"} if "GET" in methods else methods)
            return _detail(405, "Method Not Allowed", {"Allow": ", ".join(allow)})
        try:
            return methods[method](request)
        except _Answer as answer:
            return answer.response

    def _redirect_slash(self, request: Request) -> Response | None:
        """Starlette's redirect_slashes (FastAPI's default; main.py keeps it): 307 to the other spelling."""
        if request.path == "/":
            return None
        other = request.path[:-1] if request.path.endswith("/") else request.path + "/"
        if other not in self._routes:
            return None
        host = request.headers.get("host") or self.base_url.split("://", 1)[1]
        location = f"http://{host}{other}"
        if request.query:
            location += "?" + urlencode(request.query)
        return Response(307, None, headers={"Location": location})

    def _signed_in(self, request: Request) -> dict[str, Any]:
        """gndumbri/arbiter-ai backend/app/api/deps.py get_current_user: the user, with tier and role."""
        with self._state_lock:
            secret, reject, tier = self._nextauth_secret, self._modes.reject_tokens, self._modes.tier
        try:
            claims = authenticate(request.headers.get("authorization"), secret, reject, self.clock())
            return {**self.accounts.sign_in(claims), "tier": tier, "role": "USER"}
        except AuthFailure as failure:
            raise _Answer(Response(failure.status, failure.body)) from None

    # -- routes --------------------------------------------------------------------------------
    def _health(self, request: Request) -> Response:
        modes = self.mode()
        if modes["health_status"] != 200:
            # Not the app's answer (health.py never changes its status): something in front of it, e.g. the ALB,
            # answering with a page of its own, so there is no JSON body to read a reason from
            status = modes["health_status"]
            phrase = {s.value: s.phrase for s in HTTPStatus}.get(status, "Error")
            return Response(status, f"<html><body><h1>{status} {phrase}</h1></body></html>", content_type="text/html")
        # gndumbri/arbiter-ai backend/app/api/routes/health.py: always 200; "degraded" unless both are connected
        database = "connected" if modes["database_up"] else "disconnected"
        redis = "connected" if modes["redis_up"] else "disconnected"
        status = "healthy" if modes["database_up"] and modes["redis_up"] else "degraded"
        return Response(200, {"status": status, "database": database, "redis": redis, "version": "0.1.0"})

    def _frontend(self, request: Request) -> Response:
        return Response(200, FRONTEND_HTML, content_type="text/html; charset=utf-8")

    def _catalog(self, request: Request) -> Response:
        # gndumbri/arbiter-ai backend/app/api/routes/catalog.py: public; ?search= matches the game name, the
        # publisher display name or the publisher's name (Community Catalog for seeded rows), case-insensitively
        entries = _catalog(self.mode())
        search = (request.query.get("search") or "").lower()
        if search:
            entries = [
                e for e in entries if search in f"{e['game_name']}\0{e['publisher_name']}\0community catalog".lower()
            ]
        return Response(200, entries)

    def _me(self, request: Request) -> Response:
        user = self._signed_in(request)
        # gndumbri/arbiter-ai backend/app/api/routes/users.py ProfileResponse (no tier in it)
        body = {"id": user["id"], "email": user["email"], "name": user["name"], "role": user["role"]}
        return Response(200, {**body, "default_ruling_privacy": "PRIVATE"})

    def _create_session(self, request: Request) -> Response:
        raw = _read_body(request)
        user = self._signed_in(request)  # FastAPI solves the auth dependency before it validates the body
        body = _validate(SessionCreate, raw)
        now = self.clock()
        modes = self.mode()
        # gndumbri/arbiter-ai backend/app/api/routes/sessions.py: the daily limit is counted first, so a request
        # refused below still counts. rate_limit.py: INCR rate:session:{user}:{UTC day}, EXPIRE 86400 on the first
        # hit, 429 once the count passes the limit; a Redis error fails open (no count at all)
        if modes["redis_up"]:
            with self._state_lock:
                counter = self._session_counters.setdefault((user["id"], _utc(now).strftime("%Y-%m-%d")), [0, 0.0])
                if counter[0] and now >= counter[1]:
                    counter[:] = [0, 0.0]  # Redis expired the key
                counter[0] += 1
                if counter[0] == 1:
                    counter[1] = now + 86400
                count, ttl = counter[0], int(counter[1] - now + 0.5)  # Redis TTL rounds to whole seconds
            limit = SESSION_LIMITS[user["tier"]]
            if count > limit:
                message = f"You've created {limit} sessions today. Upgrade to Pro for more!"
                detail = {"code": "RATE_LIMITED", "message": message, "remaining": 0, "limit": limit}
                return _detail(429, {**detail, "reset_seconds": ttl, "category": "session"})
        active: list[str] | None = None
        if body.active_ruleset_ids:  # sessions.py: each must be a READY official ruleset of a verified publisher
            requested = list(dict.fromkeys(str(rid) for rid in body.active_ruleset_ids))
            ready = {e["id"] for e in _catalog(modes) if e["status"] in READY_STATUSES}
            active = [rid for rid in requested if rid in ready]
            if len(active) != len(requested):
                return _detail(
                    422,
                    "One or more selected catalog rulesets are unavailable. Choose a READY game "
                    "from the Armory and try again.",
                )
        created = _utc(now)
        session = {
            "id": str(uuid.uuid4()),
            "user_id": user["id"],
            "game_name": body.game_name,
            "persona": body.persona,
            "system_prompt_override": body.system_prompt_override,
            "active_ruleset_ids": active,
            "created_at": created,
            "expires_at": created + timedelta(hours=24 if user["tier"] == "FREE" else 24 * 30),  # FREE 24 h
        }
        with self._state_lock:
            self._sessions[session["id"]] = session
        return Response(201, to_jsonable_python(session))  # SessionRead: uuids as strings, datetimes ISO 8601 "Z"

    def _judge(self, request: Request) -> Response:
        raw = _read_body(request)
        user = self._signed_in(request)
        body = _validate(JudgeQuery, raw)
        now = self.clock()
        modes = self.mode()
        # gndumbri/arbiter-ai backend/app/api/routes/judge.py, in its order: 404, 410, 409, then the quota
        with self._state_lock:
            session = self._sessions.get(str(body.session_id))
        if session is None or session["user_id"] != user["id"]:
            return _detail(404, "Session not found.")
        if session["expires_at"] < _utc(now):
            return _detail(410, "Session has expired. Create a new session to continue.")
        # Namespaces: the session's READY official rulesets (filtered by ruleset_ids when given; the stand-in has no
        # uploads), else (no ruleset_ids) a READY official ruleset whose game name matches the session's
        ready = [e for e in _catalog(modes) if e["status"] in READY_STATUSES]
        requested = {str(rid) for rid in body.ruleset_ids} if body.ruleset_ids else None
        namespaces = [e["id"] for e in ready if e["id"] in (session["active_ruleset_ids"] or [])]
        namespaces = [ns for ns in namespaces if requested is None or ns in requested]
        if not namespaces and not body.ruleset_ids:
            wanted = session["game_name"].strip().lower()
            namespaces = [e["id"] for e in ready if e["game_name"].lower() == wanted][:1]
        if not namespaces:
            return _detail(
                409,
                f"No ready rules found for '{session['game_name']}'. Upload a rulebook or choose a READY Armory title.",
            )
        limit = QUERY_LIMITS[user["tier"]]
        start_of_day = _utc(now).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        with self._state_lock:
            history = self._queries.setdefault(user["id"], [])
            usage = sum(1 for created in history if created >= start_of_day)
            if limit != -1 and usage >= limit:
                return _detail(
                    429, f"Daily query limit reached ({usage}/{limit}). Upgrade to Pro for unlimited queries."
                )
            history.append(now)  # only a successful adjudication writes its audit row
        return Response(200, _verdict(body.game_name or session["game_name"]))

    def _stripe_webhook(self, request: Request) -> Response:
        """gndumbri/arbiter-ai backend/app/api/routes/billing.py stripe_webhook (no JWT: Stripe calls it)."""
        with self._state_lock:
            secret, production = self._webhook_secret, self._modes.app_env == "production"
        try:
            event = stripe_event(
                request.body, request.headers.get("stripe-signature"), secret, production, self.clock()
            )
        except AuthFailure as failure:
            return Response(failure.status, failure.body)
        with self._state_lock:
            self.webhook_events.append({"id": event.get("id"), "type": event.get("type")})
        return Response(200, {"received": True})
