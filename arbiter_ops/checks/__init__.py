"""The go-live checklist: one small function per check id, run concurrently, each under its own deadline.

A check is a function ``(run: CheckRun) -> Outcome`` registered with ``@check("id")`` (grep the id to find
it): :mod:`.infra` (rds, redis, ecs-services, alb-routing, certificate, dns), :mod:`.app` (secrets, images,
migrations, stripe-webhook, app-env, allowed-origins), :mod:`.http` (http-health, http-catalog, http-sign-in,
http-query). Checks print nothing; :func:`run_checks` returns their results for a command to render.

A check that raises :class:`CheckFailed` fails with that message; an :class:`~arbiter_ops.core.errors.OpsError`
(AWS unreachable, no credentials, ...) fails with its one-line message and is marked ``external`` (it could
not be performed, which the command reports as exit 3 when nothing else failed); anything else is a bug of
ours and fails naming the exception.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from arbiter_ops.core.errors import ExternalError, OpsError, UsageError

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

Status = Literal["pass", "fail", "warn", "skip"]
Kind = Literal["aws", "http"]

# The contract's ids, in the order of its table (the order results are reported in).
CHECK_IDS: tuple[str, ...] = (
    "rds",
    "redis",
    "secrets",
    "images",
    "ecs-services",
    "alb-routing",
    "certificate",
    "dns",
    "migrations",
    "stripe-webhook",
    "app-env",
    "allowed-origins",
    "http-health",
    "http-catalog",
    "http-sign-in",
    "http-query",
)

# Deadline of a check that talks to AWS (and Stripe): botocore's own retries finish well within it.
AWS_CHECK_TIMEOUT = 60.0
# On top of an HTTP check's own request budget: reading NEXTAUTH_SECRET, thread start-up.
HTTP_CHECK_GRACE = 15.0
# Backoff between HTTP attempts: 0.5 s, 1 s, 2 s, ... at most 4 s, plus up to 0.25 s of jitter.
HTTP_BACKOFF_INITIAL = 0.5
HTTP_BACKOFF_MAX = 4.0
HTTP_BACKOFF_JITTER = 0.25


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str


def passed(detail: str) -> Outcome:
    return Outcome("pass", detail)


def failed(detail: str) -> Outcome:
    return Outcome("fail", detail)


def warned(detail: str) -> Outcome:
    return Outcome("warn", detail)


def skipped(detail: str) -> Outcome:
    return Outcome("skip", detail)


class CheckFailed(Exception):
    """Raised by a check (or a lookup it shares) to fail with this message."""


@dataclass
class CheckResult:
    id: str
    status: Status
    detail: str
    duration_ms: int
    external: bool = False  # the check could not be performed (AWS unreachable, no credentials)

    def as_json(self) -> dict[str, Any]:
        """The contract's fields, exactly."""
        return {"id": self.id, "status": self.status, "detail": self.detail, "duration_ms": self.duration_ms}


class CheckRun:
    """What the checks of one run share: the context, and lookups made once for all of them (one
    DescribeServices for ecs-services, images, secrets and app-env; one token for both signed-in checks)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._keys: dict[str, threading.Lock] = {}
        self._values: dict[str, tuple[bool, Any]] = {}

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per run, whichever check asks first; a failure is remembered too, so every
        check that depends on it fails with the same reason without asking AWS again."""
        with self._lock:
            key_lock = self._keys.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._values:
                try:
                    self._values[key] = (True, compute())
                except Exception as exc:
                    self._values[key] = (False, exc)
            ok, value = self._values[key]
        if not ok:
            raise value
        return value


CheckFn = Callable[[CheckRun], Outcome]
CHECKS: dict[str, CheckFn] = {}
KINDS: dict[str, Kind] = {}


CLIENTS: dict[str, tuple[str, ...]] = {}


def check(check_id: str, kind: Kind = "aws", clients: tuple[str, ...] = ()) -> Callable[[CheckFn], CheckFn]:
    """Register a check function under its id. ``clients``: the AWS clients it uses, built before the checks
    start (one left out still works, built on first use)."""

    def register(fn: CheckFn) -> CheckFn:
        if check_id in CHECKS:
            raise RuntimeError(f"check {check_id!r} registered twice")
        CHECKS[check_id] = fn
        KINDS[check_id] = kind
        CLIENTS[check_id] = clients
        return fn

    return register


def http_request_budget(timeout: float, retries: int) -> float:
    """The longest an HTTP check's requests can take: every attempt timing out, every backoff at its max."""
    waits = sum(min(HTTP_BACKOFF_MAX, HTTP_BACKOFF_INITIAL * 2**i) + HTTP_BACKOFF_JITTER for i in range(retries))
    return (retries + 1) * timeout + waits


def deadline_of(ctx: Context, check_id: str) -> float:
    """Seconds a check may take before it is reported as timed out."""
    if KINDS.get(check_id) == "http":
        smoke = ctx.config.smoke
        return http_request_budget(smoke.timeout, smoke.retries) + HTTP_CHECK_GRACE
    return AWS_CHECK_TIMEOUT


def select(only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[str]:
    """The check ids to run, in the contract's order; an unknown id is a usage error (exit 2)."""
    only, skip = list(only), list(skip)
    unknown = sorted({i for i in only + skip if i not in CHECKS})
    if unknown:
        which = "ids" if len(unknown) > 1 else "id"
        raise UsageError(
            f"unknown check {which} {', '.join(unknown)} in --only/--skip",
            hint=f"valid ids: {', '.join(all_ids())}",
            code="unknown-check",
        )
    chosen = set(only) if only else set(CHECKS)
    return [i for i in all_ids() if i in chosen and i not in skip]


def all_ids() -> list[str]:
    """The contract's ids first, in its order, then any extra check (sorted)."""
    return [i for i in CHECK_IDS if i in CHECKS] + sorted(set(CHECKS) - set(CHECK_IDS))


def run_checks(ctx: Context, only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[CheckResult]:
    """Run the selected checks concurrently and return their results in the contract's order.

    One daemon thread per check rather than a ThreadPoolExecutor: the executor's workers are joined at
    interpreter exit, so a check stuck in a socket would hold the process after its deadline. Here a
    check that overruns is reported as failed and abandoned; its thread dies with the process.
    """
    ids = select(only, skip)
    # Resolved here, once, on this thread: the first call may start an embedded sandbox, and building a
    # botocore client parses its service model (tens of ms of pure Python): built by 16 threads at once
    # they would hold each other up on the GIL, and the HTTP checks would no longer start together.
    if ctx.is_local:
        ctx.local()
    for service in sorted({name for i in ids for name in CLIENTS[i]}):
        ctx.client(service)
    run = CheckRun(ctx)
    results: dict[str, CheckResult] = {}
    lock = threading.Lock()

    def record(result: CheckResult) -> None:
        with lock:
            results.setdefault(result.id, result)  # first writer wins: a late check cannot undo its timeout

    threads: dict[str, threading.Thread] = {}
    started = time.monotonic()
    for check_id in ids:
        thread = threading.Thread(
            target=lambda i=check_id: record(_run_one(run, i)), name=f"check-{check_id}", daemon=True
        )
        threads[check_id] = thread
        thread.start()
    for check_id, thread in threads.items():
        deadline = deadline_of(ctx, check_id)
        thread.join(max(0.0, started + deadline - time.monotonic()))
        if thread.is_alive():
            record(CheckResult(check_id, "fail", f"timed out after {deadline:g} s", int(deadline * 1000)))
    return [results[i] for i in ids]


def _run_one(run: CheckRun, check_id: str) -> CheckResult:
    started = time.monotonic()
    external = False
    try:
        outcome = CHECKS[check_id](run)
    except CheckFailed as exc:
        outcome = failed(str(exc))
    except OpsError as exc:
        outcome, external = failed(exc.line()), isinstance(exc, ExternalError)
    except Exception as exc:
        outcome, external = _unexpected(exc)
    duration = int((time.monotonic() - started) * 1000)
    return CheckResult(check_id, outcome.status, outcome.detail, duration, external)


def _unexpected(exc: Exception) -> tuple[Outcome, bool]:
    """An AWS error no check expected (AccessDenied above all) names the call and counts as "could not
    check"; anything else is a bug of ours."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "an error"), str(error.get("Message", ""))[:200]
        hint = " (docs/smoke-test-iam.json lists the read-only permissions)" if "AccessDenied" in code else ""
        return failed(f"AWS answered {code} to {exc.operation_name}: {message}{hint}"), True
    return failed(f"internal error: {type(exc).__name__}: {exc} (a bug in arbiter-ops)"), False


# -- lookups shared by several checks ------------------------------------------------------------
def live_services(run: CheckRun) -> dict[str, dict[str, Any]]:
    """Configured service name -> its live ECS service (absent if it does not exist): one call for all."""
    from arbiter_ops.ecs.api import describe_services

    def compute() -> dict[str, dict[str, Any]]:
        services = run.ctx.config.services
        live = describe_services(run.ctx, list(services.values()))
        return {name: live[cfg.ecs_service] for name, cfg in services.items() if cfg.ecs_service in live}

    result: dict[str, dict[str, Any]] = run.memo("services", compute)
    return result


def live_task_definition(run: CheckRun, service: str) -> dict[str, Any] | None:
    """The task definition the live service runs (None if the service or the revision does not exist)."""
    from arbiter_ops.ecs.api import describe_task_definition

    live = live_services(run).get(service)
    if not live or not live.get("taskDefinition"):
        return None
    arn = str(live["taskDefinition"])
    td: dict[str, Any] | None = run.memo(f"td:{arn}", lambda: describe_task_definition(run.ctx, arn))
    return td


# Registration: importing the modules runs their @check decorators.
from arbiter_ops.checks import app, http, infra  # noqa: E402, F401
