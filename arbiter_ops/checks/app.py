"""Application checks: what the services run and are configured with.

Each reuses the function of its own command: `secrets` is check-secrets' analysis of the task definitions
rendered for the live image tags, `secrets-fresh` compares the running tasks' start with their secrets' current
versions, `images` is push/deploy's ECR lookup, `migrations` reads migrate's audit
record (else ECS's last migration task), `stripe-webhook` is stripe-webhook's own check.
"""

from __future__ import annotations

import json
from typing import Any

from arbiter_ops.checks.base import (
    CheckFailed,
    CheckRun,
    Outcome,
    failed,
    live_services,
    live_task_definition,
    passed,
    skipped,
    warned,
)
from arbiter_ops.core.aws import arn_name, call, error_code
from arbiter_ops.core.redact import REDACTOR

BACKEND = "backend"
SHOWN_FINDINGS = 3  # the detail is one line; `check-secrets` lists them all


def secrets(run: CheckRun) -> Outcome:
    from arbiter_ops.ecs.api import image_tag_of
    from arbiter_ops.ecs.render import render_service
    from arbiter_ops.secrets.check import RENDER_TAG, findings_for

    ctx = run.ctx
    rendered = {}
    for name, cfg in ctx.config.services.items():
        live = live_task_definition(run, name)
        tag = (image_tag_of(live, cfg.container) if live else None) or RENDER_TAG
        rendered[name] = render_service(ctx, name, tag)
    findings = findings_for(ctx, rendered)
    errors = [f for f in findings if f.severity == "error"]
    warnings = [f for f in findings if f.severity == "warning"]
    worst = errors or warnings
    if worst:
        shown = "; ".join(f"{f.code}: {f.message}" for f in worst[:SHOWN_FINDINGS])
        more = f" (+{len(worst) - SHOWN_FINDINGS} more)" if len(worst) > SHOWN_FINDINGS else ""
        label = f"{len(errors)} error(s)" if errors else f"{len(warnings)} warning(s)"
        detail = f"check-secrets: {label}: {shown}{more}; `arbiter-ops check-secrets` shows the fixes"
        return failed(detail) if errors else warned(detail)
    return passed(f"check-secrets: no error or warning in {', '.join(rendered)}")


def secrets_fresh(run: CheckRun) -> Outcome:
    """A warning when running tasks started before a secret they reference changed: ECS resolves secrets at task
    start, so they hold the previous value until they are replaced (no value is read)."""
    from arbiter_ops.ecs.api import describe_task_definition
    from arbiter_ops.secrets.freshness import stale_tasks

    ctx = run.ctx
    live = live_services(run)
    services = [(name, cfg.ecs_service) for name, cfg in ctx.config.services.items() if name in live]
    if not services:
        return skipped("no configured service runs in the cluster")

    def describe(arn: str) -> dict[str, Any] | None:
        td: dict[str, Any] | None = run.memo(f"td:{arn}", lambda: describe_task_definition(ctx, arn))
        return td

    from arbiter_ops.core.errors import ExternalError

    try:
        stale = stale_tasks(ctx, services, describe)
    except ExternalError as exc:  # a warning check: a missing permission is not a failed go-live
        return warned(f"cannot tell: {exc.line()}")
    if stale:
        return warned("; ".join(s.message(ctx.env_name) for s in stale))
    return passed(f"the running tasks of {', '.join(n for n, _ in services)} hold the current secret values")


def images(run: CheckRun) -> Outcome:
    from arbiter_ops.images.ecr import find_image, parse_image_uri

    ctx = run.ctx
    missing, present, notes = [], [], []
    for name in ctx.config.services:
        td = live_task_definition(run, name)
        if td is None:
            missing.append(f"{name}: no live service or task definition")
            continue
        for container in td.get("containerDefinitions", []):
            image = str(container.get("image", ""))
            parsed = parse_image_uri(image)
            if parsed is None:  # a public image or one pinned by digest: nothing of ours to find
                notes.append(f"{name}/{container.get('name')} ({arn_name(image)}) not checked")
                continue
            repository, tag = parsed
            if find_image(ctx, repository, tag) is None:
                missing.append(f"{name} runs {repository}:{tag}, which is not in ECR")
            else:
                present.append(f"{repository}:{tag}")
    if missing:
        return failed("; ".join(missing))
    detail = f"in ECR: {', '.join(present)}" if present else "no ECR image to check"
    return passed(detail + (f" ({'; '.join(notes)})" if notes else ""))


def migrations(run: CheckRun) -> Outcome:
    from arbiter_ops.state.audit import latest

    ctx = run.ctx
    records = latest(ctx, "migrate")
    if records:
        return _judge_record(records[0])
    from arbiter_ops.db.migrations import last_migration

    task = last_migration(ctx)
    if task is None:
        return warned(
            "no migration has run: none recorded, and no stopped task started by arbiter-ops/migrate "
            "(ECS keeps stopped tasks about an hour)"
        )
    task_id = arn_name(str(task.get("task_arn") or "?"))
    when = f" (stopped {str(task['stopped_at'])[:19]})" if task.get("stopped_at") else ""
    if task.get("ok"):
        return passed(f"the last migration task {task_id}{when} exited 0")
    code = task.get("exit_code")
    outcome = f"exited {code}" if code is not None else "failed"
    reason = task.get("reason") or task.get("stopped_reason") or ""
    # migrate's own verdict usually says it already ("the migration exited 1"); do not say it twice
    said = f": {reason}" if reason and outcome not in reason else ""
    return failed(f"the last migration task {task_id}{when} {outcome}{said}")


def _judge_record(record: dict[str, Any]) -> Outcome:
    """migrate's audit record: ``ok``, else ``verdict``, else ``exit_code`` says how it ended."""
    code = record.get("exit_code")
    if isinstance(record.get("ok"), bool):
        ok = record["ok"]
    elif "verdict" in record:
        ok = record["verdict"] == "ok"
    elif code is not None:
        ok = code == 0
    else:
        return warned(f"the last migration record ({record.get('at', '?')}) does not say how it ended")
    where = f"the last migration ({record.get('at', '?')} by {record.get('who', '?')}"
    tag = record.get("image_tag")
    where += f", image {tag})" if tag else ")"
    if ok:
        return passed(f"{where} exited 0")
    outcome = f"exited {code}" if code is not None else str(record.get("verdict") or "failed")
    reason = record.get("reason")
    return failed(f"{where} {outcome}" + (f": {reason}" if reason else ""))


def stripe_webhook(run: CheckRun) -> Outcome:
    from arbiter_ops.billing.webhook import check_webhook

    ok, detail = check_webhook(run.ctx)
    return passed(detail) if ok else failed(detail)


# -- production settings of the backend --------------------------------------------------------
def backend_settings(run: CheckRun, names: tuple[str, ...]) -> dict[str, str | None]:
    """What the live backend container is given for ``names``: its plain ``environment``, or the secret
    its ``secrets`` entry points at. None: not given at all."""
    from arbiter_ops.secrets.value_from import ValueFromError, parse_value_from

    ctx = run.ctx
    cfg = ctx.config.service(BACKEND)
    td = live_task_definition(run, BACKEND)
    if td is None:
        raise CheckFailed(f"no live {cfg.ecs_service} service (or task definition) in cluster {ctx.env.cluster}")
    container = next((c for c in td.get("containerDefinitions", []) if c.get("name") == cfg.container), None)
    if container is None:
        raise CheckFailed(f"the live backend task definition has no container {cfg.container}")
    plain = {e.get("name"): e.get("value") for e in container.get("environment") or []}
    refs = {s.get("name"): s.get("valueFrom") for s in container.get("secrets") or []}
    out: dict[str, str | None] = {}
    for name in names:
        if name in plain:
            out[name] = str(plain[name] or "")
        elif name in refs:
            try:
                ref = parse_value_from(refs[name])
            except ValueFromError as exc:
                raise CheckFailed(f"{name} of the backend: {exc}") from None
            out[name] = _secret_value(run, ref)
        else:
            out[name] = None
    return out


def _secret_value(run: CheckRun, ref: Any) -> str | None:
    from botocore.exceptions import ClientError

    ctx = run.ctx
    if ref.store == "ssm":  # GetParameters, as check-secrets: one permission (ssm:GetParameters) for both
        resp = call(ctx.client("ssm").get_parameters, Names=[ref.secret_id], WithDecryption=True)
        found = resp.get("Parameters") or []
        if not found:
            raise CheckFailed(f"the backend's SSM parameter {ref.secret_id} does not exist")
        value = found[0].get("Value")
        REDACTOR.add(value)
        return str(value) if value is not None else None

    def fetch() -> str | None:
        from arbiter_ops.secrets.fetch import get_secret_value

        try:
            text = get_secret_value(ctx.client("secretsmanager"), ref).get("SecretString")
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise CheckFailed(f"the backend's secret {ref.describe()} does not exist") from None
            raise
        return text if isinstance(text, str) else None

    text = run.memo(f"secret:{ref.secret_id}:{ref.version_stage}:{ref.version_id}", fetch)
    if ref.key is None:
        return text
    try:
        payload = json.loads(text or "")
    except ValueError:
        return None  # never format the error: it quotes the payload
    value = payload.get(ref.key) if isinstance(payload, dict) else None
    return str(value) if value is not None else None


def app_env(run: CheckRun) -> Outcome:
    ctx = run.ctx
    if not ctx.is_production:
        return skipped(f"{ctx.env_name} is not production")
    expected = {"APP_ENV": "production", "APP_MODE": "production"}
    values = backend_settings(run, tuple(expected))
    problems = []
    for name, want in expected.items():
        value = values[name]
        if value is None:
            problems.append(f"{name} is not given to the backend (expected {want!r})")
        elif value.strip() != want:
            from arbiter_ops.secrets.rules import shown_app_value

            shown = shown_app_value(value.strip()) or "set to something else"
            problems.append(f"{name} is {shown} (expected {want!r})")
    if problems:
        return failed(f"the live backend: {'; '.join(problems)}")
    return passed("the live backend runs with APP_ENV=production and APP_MODE=production")


def allowed_origins(run: CheckRun) -> Outcome:
    ctx = run.ctx
    if not ctx.is_production:
        return skipped(f"{ctx.env_name} is not production")
    origin = f"https://{ctx.domain}"
    value = backend_settings(run, ("ALLOWED_ORIGINS",))["ALLOWED_ORIGINS"]
    if value is None:
        return failed(f"ALLOWED_ORIGINS is not given to the live backend (expected {origin})")
    from arbiter_ops.secrets.rules import outside_domain, parse_origins

    items = parse_origins(value)
    # The production origin must be there, and nothing outside the domain.
    strays = outside_domain(items, ctx.domain)
    if strays:
        shown = ", ".join(strays)[:200]
        return failed(f"ALLOWED_ORIGINS of the live backend allows {shown}, outside {ctx.domain} (expected {origin})")
    if origin not in items:
        shown = ", ".join(items)[:200] or "empty"
        return failed(f"ALLOWED_ORIGINS of the live backend lacks {origin} (it is {shown})")
    return passed(f"ALLOWED_ORIGINS of the live backend is {', '.join(items)}")
