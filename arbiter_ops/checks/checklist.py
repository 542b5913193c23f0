"""The go-live checklist: an explicit, ordered list of checks (the contract's table), run concurrently, each under
its own deadline. Checks print nothing; :func:`run_checks` returns their results for a command to render.

A check that raises :class:`~.base.CheckFailed` fails with that message; an
:class:`~arbiter_ops.core.errors.OpsError` (AWS unreachable, no credentials, ...) fails with its one-line message
and is marked ``external`` (it could not be performed, which the command reports as exit 3 when nothing else
failed); anything else is a bug of ours and fails naming the exception.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from arbiter_ops.checks import app, http, infra
from arbiter_ops.checks.base import (
    HTTP_BACKOFF_INITIAL,
    HTTP_BACKOFF_JITTER,
    HTTP_BACKOFF_MAX,
    HTTP_CHECK_GRACE,
    CheckFailed,
    CheckResult,
    CheckRun,
    Kind,
    Outcome,
    failed,
)
from arbiter_ops.core.errors import ExternalError, OpsError, UsageError

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context


@dataclass(frozen=True)
class Check:
    id: str
    run: Callable[[CheckRun], Outcome]
    kind: Kind = "aws"
    # The AWS clients it uses, built before the checks start (one left out still works, built on first use).
    clients: tuple[str, ...] = ()


# The contract's checks, in the order of its table (the order results are reported in).
CHECKLIST: tuple[Check, ...] = (
    Check("rds", infra.rds, clients=("rds",)),
    Check("redis", infra.redis, clients=("elasticache",)),
    Check("secrets", app.secrets, clients=("ecs", "secretsmanager")),
    Check("images", app.images, clients=("ecs", "ecr")),
    Check("ecs-services", infra.ecs_services, clients=("ecs",)),
    Check("alb-routing", infra.alb_routing, clients=("ecs", "elbv2")),
    Check("certificate", infra.certificate, clients=("ecs", "elbv2", "acm")),
    Check("dns", infra.dns, clients=("ecs", "elbv2", "route53", "cloudfront")),
    Check("migrations", app.migrations, clients=("dynamodb", "ecs")),
    Check("stripe-webhook", app.stripe_webhook, clients=("secretsmanager",)),
    Check("app-env", app.app_env, clients=("ecs",)),
    Check("allowed-origins", app.allowed_origins, clients=("ecs",)),
    Check("http-health", http.http_health, kind="http"),
    Check("http-catalog", http.http_catalog, kind="http"),
    Check("http-sign-in", http.http_sign_in, kind="http", clients=("secretsmanager",)),
    Check("http-query", http.http_query, kind="http", clients=("secretsmanager",)),
    # beyond the contract's table
    Check("beat-singleton", infra.beat_singleton, clients=("ecs",)),
    Check("secrets-fresh", app.secrets_fresh, clients=("ecs", "secretsmanager")),
)
CHECKS: dict[str, Check] = {c.id: c for c in CHECKLIST}
CHECK_IDS: tuple[str, ...] = tuple(CHECKS)


def http_request_budget(timeout: float, retries: int) -> float:
    """The longest an HTTP check's requests can take: every attempt timing out, every backoff at its max."""
    waits = sum(min(HTTP_BACKOFF_MAX, HTTP_BACKOFF_INITIAL * 2**i) + HTTP_BACKOFF_JITTER for i in range(retries))
    return (retries + 1) * timeout + waits


def deadline_of(ctx: Context, check_id: str) -> float:
    """Seconds a check may take before it is reported as timed out."""
    if CHECKS[check_id].kind == "http":
        smoke = ctx.config.smoke
        return http_request_budget(smoke.timeout, smoke.retries) + HTTP_CHECK_GRACE
    return ctx.config.smoke.aws_timeout


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
    selected = [i for i in all_ids() if i in chosen and i not in skip]
    if not selected:  # nothing run is not "passed"
        raise UsageError(
            "--only and --skip leave no check to run",
            hint="drop the --skip of an id given to --only",
            code="no-check-selected",
        )
    return selected


def all_ids() -> list[str]:
    """Every check id, in the checklist's order."""
    return list(CHECK_IDS)


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
    for service in sorted({name for i in ids for name in CHECKS[i].clients}):
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
            # It could not be performed in time (AWS or the app not answering): not a "no" about the site.
            timed_out = CheckResult(check_id, "fail", f"timed out after {deadline:g} s", int(deadline * 1000), True)
            record(timed_out)
    return [results[i] for i in ids]


def _run_one(run: CheckRun, check_id: str) -> CheckResult:
    started = time.monotonic()
    external = False
    try:
        outcome = CHECKS[check_id].run(run)
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
        denied = "AccessDenied" in code
        hint = " (`arbiter-ops bootstrap` prints the read-only policy smoke-test needs)" if denied else ""
        return failed(f"AWS answered {code} to {exc.operation_name}: {message}{hint}"), True
    return failed(f"internal error: {type(exc).__name__}: {exc} (a bug in arbiter-ops)"), False


def run_smoke(ctx: Context, only: Iterable[str] = (), skip: Iterable[str] = ()) -> tuple[bool, list[CheckResult]]:
    """Run the checklist and print nothing: (no check failed, the results). `deploy` calls this after a
    rollout and reports the results as its `smoke-test` step."""
    checks = run_checks(ctx, only, skip)
    return not any(c.status == "fail" for c in checks), checks


def exit_code(checks: list[CheckResult]) -> int:
    failures = [c for c in checks if c.status == "fail"]
    if not failures:
        return 0
    return 3 if all(c.external for c in failures) else 1
