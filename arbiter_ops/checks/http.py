"""HTTP checks against the environment's base URL: what a user's browser and the frontend do first.

httpx with a timeout per request (``[smoke] timeout``), redirects not followed unless
``[smoke] follow_redirects`` (a redirect is usually a wrong path or a missing trailing slash, and following
it would hide that), TLS verified everywhere but the local sandbox. Connection errors, timeouts and 5xx are
retried ``[smoke] retries`` times with jittered backoff (tenacity): one blip passes, an outage fails.

The signed-in checks mint a short-lived HS256 token signed with the environment's NEXTAUTH_SECRET (how the
frontend authenticates to the backend). Both the secret and the token go to the redactor the moment they
exist, and neither is ever put in a detail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arbiter_ops import __version__
from arbiter_ops.checks.base import (
    HTTP_BACKOFF_INITIAL,
    HTTP_BACKOFF_JITTER,
    HTTP_BACKOFF_MAX,
    CheckFailed,
    CheckRun,
    Outcome,
    failed,
    passed,
    warned,
)
from arbiter_ops.core.aws import error_code
from arbiter_ops.core.errors import ExternalError
from arbiter_ops.core.redact import REDACTOR
from arbiter_ops.secrets.store import read_key

if TYPE_CHECKING:
    import httpx

TOKEN_TTL_S = 300  # the contract's ceiling: five minutes
NEXTAUTH_SECRET = "NEXTAUTH_SECRET"
BODY_REASON_CHARS = 120


@dataclass
class Answer:
    response: httpx.Response
    attempts: int
    elapsed_ms: int


def _request(run: CheckRun, method: str, path: str, token: str | None = None, body: Any = None) -> Answer:
    """One request with bounded retries; raises :class:`CheckFailed` naming why it got no answer."""
    import httpx
    from tenacity import (
        Retrying,
        retry_if_exception_type,
        retry_if_result,
        stop_after_attempt,
        wait_exponential,
        wait_random,
    )

    ctx = run.ctx
    smoke = ctx.config.smoke
    url = ctx.base_url() + path
    headers = {"User-Agent": f"arbiter-ops/{__version__} smoke-test", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    retrying = Retrying(
        stop=stop_after_attempt(smoke.retries + 1),
        # 0.5 s, 1 s, 2 s, ... at most 4 s, plus up to 0.25 s of jitter (tenacity 8 and 9 alike)
        wait=wait_exponential(multiplier=HTTP_BACKOFF_INITIAL, max=HTTP_BACKOFF_MAX)
        + wait_random(0, HTTP_BACKOFF_JITTER),
        retry=retry_if_exception_type(httpx.TransportError) | retry_if_result(lambda r: r.status_code >= 500),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,  # the last answer
        reraise=True,
    )
    with httpx.Client(
        timeout=smoke.timeout,
        follow_redirects=smoke.follow_redirects,
        verify=not ctx.is_local,  # the sandbox speaks plain HTTP on 127.0.0.1; everything else is TLS
        headers=headers,
    ) as client:
        try:
            response = retrying(client.request, method, url, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            reason = f"{method} {url}: {_transport_reason(exc)} ({_attempts(retrying)})"
            if reason.startswith(f"{method} {url}: TLS failed"):
                raise CheckFailed(reason) from None  # it answered, with a certificate a browser refuses
            raise ExternalError(reason) from None  # the app cannot be reached at all: exit 3
        except httpx.TimeoutException:
            raise CheckFailed(f"{method} {url} timed out after {smoke.timeout:g} s ({_attempts(retrying)})") from None
        except httpx.TransportError as exc:
            raise CheckFailed(f"{method} {url}: {_transport_reason(exc)} ({_attempts(retrying)})") from None
    attempts = int(retrying.statistics.get("attempt_number", 1))
    return Answer(response, attempts, int(response.elapsed.total_seconds() * 1000))


def _attempts(retrying: Any) -> str:
    n = int(retrying.statistics.get("attempt_number", 1))
    return f"{n} attempt{'s' if n != 1 else ''}"


def _transport_reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text:
        return f"TLS failed: {text[:200]}"
    if type(exc).__name__ == "ConnectError":
        return f"cannot connect: {text[:200]}"
    return f"{type(exc).__name__}: {text[:200]}"


def _reason(response: httpx.Response) -> str:
    """The app's own short reason for an error, from each shape the real backend answers
    (gndumbri/arbiter-ai): ``{"detail": "..."}`` (HTTPException), ``{"detail": {"code", "message"}}`` (auth and rate
    limits, api/deps.py and api/rate_limit.py), ``{"detail": [{"loc", "msg"}, ...]}`` (FastAPI's 422) and
    ``{"error": {"code", "message"}}`` (the 500 of api/middleware.py, the per-IP 429)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    detail = body.get("detail", body.get("error"))
    if isinstance(detail, dict):
        code, message = detail.get("code"), detail.get("message")
        text = ": ".join(str(x) for x in (code, message) if x)
    elif isinstance(detail, list):
        problems = [
            f"{'.'.join(str(p) for p in item.get('loc', []) if p != 'body')}: {item.get('msg')}"
            for item in detail
            if isinstance(item, dict)
        ]
        text = "; ".join(problems)
    else:
        text = detail if isinstance(detail, str) else ""
    return f" ({text[:BODY_REASON_CHARS]})" if text else ""


def _not_ok(method: str, path: str, answer: Answer) -> str:
    """Why an answer that is not 200 fails, naming the status and what it usually means."""
    response = answer.response
    status = response.status_code
    if 300 <= status < 400:
        location = response.headers.get("location", "?")
        return (
            f"{method} {path} answered {status} redirect to {location}; redirects are not followed "
            "(fix the path, or set [smoke] follow_redirects = true)"
        )
    after = f" after {answer.attempts} attempts" if answer.attempts > 1 else ""
    return f"{method} {path} answered {status}{_reason(response)}{after}"


def _ok_detail(method: str, path: str, answer: Answer, extra: str = "") -> str:
    retried = f" after {answer.attempts} attempts" if answer.attempts > 1 else ""
    return f"{method} {path} answered 200{extra} in {answer.elapsed_ms} ms{retried}"


def _json(response: httpx.Response) -> Any:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        return response.json()
    except ValueError:
        return None


def http_health(run: CheckRun) -> Outcome:
    """200 **and** `status: healthy`: the real backend answers 200 with `degraded` when its database or Redis is
    down (gndumbri/arbiter-ai backend/app/api/routes/health.py)."""
    path = run.ctx.config.smoke.health_path
    answer = _request(run, "GET", path)
    if answer.response.status_code != 200:
        return failed(_not_ok("GET", path, answer))
    body = _json(answer.response)
    status = body.get("status") if isinstance(body, dict) else None
    if status != "healthy":
        parts = [f"{k} {body[k]}" for k in ("database", "redis") if isinstance(body, dict) and k in body]
        parts = [p for p in parts if not p.endswith(" connected")]
        said = f"status {status!r}" if isinstance(status, str) else "no status"
        down = f": {', '.join(parts)}" if parts else ""
        return failed(f"GET {path} answered 200 with {said}{down}")
    return passed(_ok_detail("GET", path, answer, " healthy"))


def http_catalog(run: CheckRun) -> Outcome:
    path = run.ctx.config.smoke.catalog_path
    answer = _request(run, "GET", path)
    if answer.response.status_code != 200:
        return failed(_not_ok("GET", path, answer))
    data = _json(answer.response)
    if data is None:
        kind = answer.response.headers.get("content-type", "no content type")
        return failed(f"GET {path} answered 200 but not JSON ({kind}): is /api/* routed to the frontend?")
    if not isinstance(data, list):  # the real route's response_model is list[CatalogEntry] (routes/catalog.py)
        return failed(f"GET {path} answered 200 with a JSON {type(data).__name__}, not the catalog's list")
    if not data:
        env = run.ctx.env_name
        return failed(
            f"GET {path} answered an empty catalog: seed it with "
            f"`arbiter-ops --env {env} run backend -- python -m scripts.seed_catalog`"
        )
    return passed(_ok_detail("GET", path, answer, f" with {len(data)} game(s)"))


# -- signed in ---------------------------------------------------------------------------------
def smoke_token(run: CheckRun) -> str:
    """The run's token (minted once for both signed-in checks), signed with the environment's NEXTAUTH_SECRET."""

    def mint() -> str:
        from arbiter_ops.checks.token import mint_hs256

        ctx = run.ctx
        smoke = ctx.config.smoke
        secret = _nextauth_secret(run)
        token = mint_hs256(secret, smoke.identity_sub, smoke.identity_email, smoke.identity_name, ttl_s=TOKEN_TTL_S)
        REDACTOR.add(token)
        return token

    token: str = run.memo("token", mint)
    return token


def _nextauth_secret(run: CheckRun) -> str:
    """NEXTAUTH_SECRET from the environment's secret, under the key the backend's config maps it to."""
    from botocore.exceptions import ClientError

    ctx = run.ctx
    backend = ctx.config.services.get("backend")
    key = backend.secrets.get(NEXTAUTH_SECRET, NEXTAUTH_SECRET) if backend else NEXTAUTH_SECRET
    where = f"secret {ctx.secret_id}"
    try:
        value = read_key(ctx.client("secretsmanager"), ctx.secret_id, key)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise CheckFailed(f"cannot mint the smoke-test token: {where} does not exist") from None
        raise
    if value is None:
        raise CheckFailed(f"cannot mint the smoke-test token: {where} has no {key} key")
    return value


def _refused(path: str, method: str, answer: Answer, run: CheckRun) -> str:
    reason = _not_ok(method, path, answer)
    if answer.response.status_code in (401, 403):
        reason += (
            f": the backend refused a token signed with NEXTAUTH_SECRET of {run.ctx.secret_id} "
            "(does the running backend use that secret?)"
        )
    return reason


def http_sign_in(run: CheckRun) -> Outcome:
    """GET /api/v1/users/me with the token (routes/users.py; the first call creates the smoke identity's user)."""
    smoke = run.ctx.config.smoke
    path = smoke.sign_in_path
    answer = _request(run, "GET", path, token=smoke_token(run))
    if answer.response.status_code != 200:
        return failed(_refused(path, "GET", answer, run))
    data = _json(answer.response)
    email = data.get("email") if isinstance(data, dict) else None
    return passed(_ok_detail("GET", path, answer, f" for {email}" if isinstance(email, str) else " (no email)"))


def http_query(run: CheckRun) -> Outcome:
    """A ruling, as a user gets one: POST /api/v1/sessions {game_name} -> 201 {id}, then POST /api/v1/judge
    {session_id, query} -> 200 {verdict} (routes/sessions.py, routes/judge.py). Each run writes one query audit
    row and, in production, makes one paid model call; a FREE identity may make 5 a day."""
    smoke = run.ctx.config.smoke
    token = smoke_token(run)
    created = _request(run, "POST", smoke.sessions_path, token=token, body={"game_name": smoke.game_name})
    if created.response.status_code != 201:
        return _query_refused(run, "POST", smoke.sessions_path, created)
    session = _json(created.response)
    session_id = session.get("id") if isinstance(session, dict) else None
    if not isinstance(session_id, str):
        return failed(f"POST {smoke.sessions_path} answered 201 without a session id")
    body = {"session_id": session_id, "query": smoke.query}
    answer = _request(run, "POST", smoke.judge_path, token=token, body=body)
    if answer.response.status_code == 409:  # no READY ruleset for the game: nothing to answer from, app not broken
        return warned(f"{_not_ok('POST', smoke.judge_path, answer)}: no ruleset of {smoke.game_name!r} is ready yet")
    if answer.response.status_code != 200:
        return _query_refused(run, "POST", smoke.judge_path, answer)
    data = _json(answer.response)
    verdict = data.get("verdict") if isinstance(data, dict) else None
    if not isinstance(verdict, str) or not verdict.strip():
        what = "no JSON" if data is None else "an empty or missing verdict"
        return failed(f"POST {smoke.judge_path} answered 200 with {what}")
    model = data.get("model") if isinstance(data, dict) else None
    extra = f" with a {len(verdict)}-character verdict" + (f" from {model}" if isinstance(model, str) else "")
    return passed(_ok_detail("POST", smoke.judge_path, answer, extra))


def _query_refused(run: CheckRun, method: str, path: str, answer: Answer) -> Outcome:
    reason = _refused(path, method, answer, run)
    if answer.response.status_code == 429:
        reason += (
            f": the smoke identity {run.ctx.config.smoke.identity_email} hit its tier's daily limit (FREE: 10 "
            "sessions, 5 queries per UTC day); give it a PRO subscription, or `--skip http-query`"
        )
    return failed(reason)
