"""`deploy [SERVICE...]`: lock -> render -> check-secrets -> images -> register -> migrate -> update -> wait
-> smoke-test -> (rollback) -> unlock, with honest waiting and a summary.

Every step is recorded under the contract's name; nothing changes before the checks pass; a failed
migration stops the deploy before any service changes; a failed rollout or smoke test rolls every
service back to the revision it had before (exit 1), and a failed rollback is exit 4.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arbiter_ops.commands import option
from arbiter_ops.core.errors import OpsError, Refused, interruption
from arbiter_ops.core.polling import WAIT_TIMEOUT
from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context
    from arbiter_ops.core.steps import Pipeline
    from arbiter_ops.ecs.plan import Outcome, Plan

MIGRATION_COMMAND = ["alembic", "upgrade", "head"]


@dataclass(frozen=True)
class DeployOptions:
    services: list[str] = option(list, "Services to deploy (default: all).")
    image_tag: str | None = option(None, "Image tag (default: the short git SHA).")
    dry_run: bool = option(False, "Show the plan and per-service diffs; change nothing.")
    no_migrate: bool = option(False, "Skip the migration gate.")
    no_smoke: bool = option(False, "Skip the smoke test after the rollout.")
    timeout: float = option(WAIT_TIMEOUT, "Seconds to wait for each rollout.")
    max_failed_tasks: int = option(2, "Failed tasks of the new deployment after which the deploy rolls back.")
    stall_timeout: float = option(600.0, "Seconds without any change in a rollout before it counts as stalled.")
    force_new_deployment: bool = option(False, "Restart tasks even on the same revision (e.g. after a secret changed).")
    lock_wait: float = option(0.0, "Seconds to wait for another deploy's lock.")
    seed_catalog_if_empty: bool = option(False, "Seed an empty catalog (python -m scripts.seed_catalog), check again.")


def run(ctx: Context, opts: DeployOptions) -> int:
    from arbiter_ops.core.context import git_short_sha
    from arbiter_ops.core.steps import Pipeline
    from arbiter_ops.ecs.plan import Outcome, Plan
    from arbiter_ops.ecs.taskdef import check_image_tag

    names = list(dict.fromkeys(opts.services)) or list(ctx.config.services)
    for name in names:
        ctx.config.service(name)  # unknown service: exit 2 before anything
    tag = check_image_tag(opts.image_tag) if opts.image_tag else check_image_tag(git_short_sha())
    plan = Plan(tag=tag, services=names)
    if ctx.is_local:
        ctx.local()  # start the embedded sandbox before the steps, so their timings are the steps' own
    dry_run = opts.dry_run
    if not dry_run:
        ctx.confirm_production(f"deploy {plan.tag} ({', '.join(names)})")
    pipe = Pipeline(ctx.output)
    ctx.output.info(f"{'planning' if dry_run else 'deploying'} {plan.tag} to {ctx.env_name}: {', '.join(names)}")
    if dry_run:
        return _dry_run(ctx, plan, pipe)

    from arbiter_ops.state.lock import acquire_lock

    began = time.monotonic()  # the audit record's duration_ms
    with pipe.step("lock") as step:
        lock = acquire_lock(ctx, f"deploy {plan.tag}", wait=opts.lock_wait)
        lock.start_renewal()
        step.detail = f"held by {lock.holder['who']}@{lock.holder['host']}"
    outcome = Outcome()
    try:
        _run_pipeline(ctx, plan, pipe, outcome, opts)
    except OpsError as exc:
        outcome.error = exc
    except Exception as exc:  # AWS refused a request no step had a word for: the summary still says each step's
        from arbiter_ops.core.aws import aws_refused, is_client_error

        if not is_client_error(exc):
            raise
        outcome.error = aws_refused(exc)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP from CI: record, unlock, say where things stand
        outcome.error = OpsError(interruption(exc)[0], code="interrupted")
        raise
    finally:
        try:
            _audit(ctx, plan, outcome, began)
        finally:  # whatever happened above (Ctrl-C included), the lock goes
            with pipe.step("unlock"):
                lock.release()
            if outcome.error is not None and outcome.error.code == "interrupted":
                _where_things_stand(ctx, plan, outcome.error.message)
    return _summary(ctx, plan, pipe, outcome)


def _where_things_stand(ctx: Context, plan: Plan, what: str) -> None:
    from arbiter_ops.ecs.services import say_where_things_stand

    tag, env = plan.tag, ctx.env_name
    services = {s: ctx.config.services[s].ecs_service for s in plan.services}
    steps = f"to finish it: `arbiter-ops --env {env} deploy --image-tag {tag}`; to put a service back: " + (
        f"`arbiter-ops --env {env} rollback SERVICE`"
    )
    say_where_things_stand(ctx, f"deploy of {tag} to {env} {what}", services, plan.live_arns, steps)


def _run_pipeline(ctx: Context, plan: Plan, pipe: Pipeline, outcome: Outcome, opts: DeployOptions) -> None:
    from arbiter_ops.core.aws import arn_name
    from arbiter_ops.ecs.plan import register
    from arbiter_ops.ecs.recovery import after_failed_wait, rollback, said
    from arbiter_ops.ecs.rollout import Limits, RolloutTimeout
    from arbiter_ops.ecs.services import Change, update_services, wait_stable
    from arbiter_ops.secrets.value_from import secret_of_key

    _checks(ctx, plan, pipe)
    with pipe.step("register") as step:
        register(ctx, plan)
        step.detail = (
            f"registered {', '.join(arn_name(plan.arns[s]) for s in plan.registered)}"
            if plan.registered
            else "task definitions unchanged"
        )
    timeout = opts.timeout
    _migrate(ctx, plan, pipe, outcome, opts.no_migrate, timeout)
    plan.changes = [
        Change(
            s,
            ctx.config.services[s].ecs_service,
            plan.live_arn(s),
            plan.arns[s],
            plan.deployments.get(s),
            container=plan.container(ctx, s),
            secret_of_key=secret_of_key(plan.container(ctx, s)),
        )
        for s in plan.services
        if opts.force_new_deployment or plan.live_arn(s) != plan.arns[s] or plan.deployments.get(s)
    ]
    if not plan.changes:
        pipe.skip("update", "every service already runs its revision")
        pipe.skip("wait", "nothing to wait for")
    else:
        with pipe.step("update") as step:
            try:
                since = update_services(ctx, plan.changes, force_new_deployment=opts.force_new_deployment)
            except Exception as exc:  # AWS refused or kept failing (an OpsError, or its ClientError as it is)
                sent = [c for c in plan.changes if c.sent]
                if not sent:
                    raise  # nothing changed: the error says what AWS said (exit 3)
                # Some services already roll to the new revision and the rest never will: mixed versions, which
                # the deploy must not leave behind. Those go back, as after a failed rollout.
                refused = next(c for c in plan.changes if not c.sent)
                why = f"UpdateService of {refused.name} failed ({said(exc)})"
                step.status = "failed"
                step.detail = f"{why}; {', '.join(c.name for c in sent)} had been updated"
                plan.changes = sent
                return rollback(ctx, plan, pipe, outcome, timeout, why)
            step.detail = ", ".join(f"{c.name} -> {arn_name(c.target)}" for c in plan.changes)
        with pipe.step("wait") as step:
            limits = Limits(opts.max_failed_tasks, opts.stall_timeout)
            try:
                progress, polls = wait_stable(ctx, plan.changes, timeout, since, f"deploying {plan.tag}", limits)
            except RolloutTimeout as exc:
                outcome.verdicts.update({p.name: p for p in exc.progress})
                step.status, step.detail = "failed", exc.message
                return rollback(ctx, plan, pipe, outcome, timeout, exc.message)
            except OpsError as exc:
                # AWS unreachable even after retries: a rollback would fail the same way. Say where things
                # stand and what to do.
                exc.hint = (
                    f"{exc.hint + '; ' if exc.hint else ''}the services may still be rolling: check "
                    f"`arbiter-ops --env {ctx.env_name} status`, and `arbiter-ops rollback SERVICE` puts one back"
                )
                raise
            outcome.final.update({p.name: p.task_definition for p in progress})
            outcome.verdicts.update({p.name: p for p in progress})
            failed = [p for p in progress if p.state == "failed"]
            if failed:
                step.status = "failed"
                why = "; ".join(p.line() for p in failed)
                step.detail = f"{why} ({polls} poll{'s' if polls != 1 else ''})"
                return after_failed_wait(ctx, plan, pipe, outcome, timeout, why)
            step.detail = "; ".join(f"{p.name} revision {p.revision} {p.rollout}" for p in progress)
            step.detail += f" ({polls} poll{'s' if polls != 1 else ''})"
    if opts.no_smoke:
        pipe.skip("smoke-test", "--no-smoke")
    else:
        smoke_ok, detail = _smoke(ctx, pipe, plan, opts)
        if not smoke_ok and plan.changes:
            return rollback(ctx, plan, pipe, outcome, timeout, f"smoke test failed: {detail}")
        if not smoke_ok:
            outcome.error = Refused(f"smoke test failed: {detail}", code="smoke-test-failed")
            return None
    outcome.ok = True
    return None


def _checks(ctx: Context, plan: Plan, pipe: Pipeline) -> None:
    """render, check-secrets, images: everything that must hold before any change."""
    from arbiter_ops.ecs.render import render_service

    with pipe.step("render") as step:
        for name in plan.services:
            plan.rendered[name] = render_service(ctx, name, plan.tag)
        step.detail = ", ".join(f"{n} ({plan.rendered[n]['family']})" for n in plan.services)
    with pipe.step("check-secrets") as step:
        from arbiter_ops.secrets.check import gate

        step.detail = gate(ctx, plan.rendered)
    with pipe.step("images") as step:
        from arbiter_ops.core.fanout import each
        from arbiter_ops.images.ecr import find_image

        repos = [ctx.config.services[name].ecr_repository for name in plan.services]
        found = each(repos, lambda repo: find_image(ctx, repo, plan.tag))  # one DescribeImages each, at once
        missing = [f"{repo}:{plan.tag}" for repo, image in zip(repos, found, strict=True) if image is None]
        if missing:
            raise Refused(
                f"image(s) not in ECR: {', '.join(missing)}",
                hint=f"push them first (`arbiter-ops push --tag {plan.tag}`)",
                code="image-missing",
            )
        step.detail = f"{len(plan.services)} image(s) tagged {plan.tag} found in ECR"


def _migrate(ctx: Context, plan: Plan, pipe: Pipeline, outcome: Outcome, skip: bool, timeout: float) -> None:
    """The gate: a failed migration stops the deploy before any service changes."""
    if skip:
        pipe.skip("migrate", "--no-migrate")
        return
    if "backend" not in plan.services:
        pipe.skip("migrate", "the backend is not part of this deploy")
        return
    from arbiter_ops.db.migrations import migrate_and_verify

    with pipe.step("migrate") as step:
        result = migrate_and_verify(ctx, plan.arns["backend"], MIGRATION_COMMAND, timeout, on_log=ctx.output.info)
        outcome.migrated = True
        step.detail = f"{result.verdict}: {result.reason}"
        if not result.ok:
            raise Refused(f"migration failed: {result.reason}; no service was changed", code="migration-failed")


def _smoke(ctx: Context, pipe: Pipeline, plan: Plan, opts: DeployOptions) -> tuple[bool, str]:
    from arbiter_ops.checks.checklist import run_smoke
    from arbiter_ops.db.migrations import catalog_is_empty, seed_catalog

    with pipe.step("smoke-test") as step:
        ok, checks = run_smoke(ctx)
        seeded = ""
        if not ok and opts.seed_catalog_if_empty and catalog_is_empty(checks) and "backend" in plan.arns:
            result = seed_catalog(ctx, plan.arns["backend"], opts.timeout, on_log=ctx.output.info)
            seeded = f"the catalog was empty: {result.reason}; "
            ok, checks = run_smoke(ctx) if result.ok else (ok, checks)
        failed = [c for c in checks if c.status == "fail"]
        step.detail = seeded + ("; ".join(f"{c.id}: {c.detail}" for c in failed) or f"{len(checks)} checks passed")
        if not ok:
            step.status = "failed"
        return ok, step.detail


def _audit(ctx: Context, plan: Plan, outcome: Outcome, began: float) -> None:
    from arbiter_ops.state.audit import record_quietly

    # The revisions the services run when the command ends (the contract's `task_definitions`): what the
    # last DescribeServices showed, or the live ones when nothing was changed.
    outcome.task_definitions = {s: plan.live_arn(s) for s in plan.services if plan.live_arn(s)} | outcome.final
    data = {
        "image_tag": plan.tag,
        "services": plan.services,
        "ok": outcome.ok,
        "rolled_back": outcome.rolled_back,
        "before": {s: plan.live_arn(s) for s in plan.services},
        "after": outcome.task_definitions,
        "verdicts": outcome.verdicts_json(plan.services),
        "error": outcome.error.message if outcome.error is not None else None,
        "duration_ms": int((time.monotonic() - began) * 1000),
    }
    record_quietly(ctx, "deploy", data)  # the deploy's own outcome matters more than its record


def _summary(ctx: Context, plan: Plan, pipe: Pipeline, outcome: Outcome) -> int:
    from arbiter_ops.core.aws import arn_name

    error = outcome.error
    doc: dict[str, Any] = {
        "image_tag": plan.tag,
        "steps": pipe.as_json(),
        "task_definitions": outcome.task_definitions,
        "rolled_back": outcome.rolled_back,
        "services": outcome.verdicts_json(plan.services),
    }
    if error is not None:
        doc["error"] = {"code": error.code, "message": error.line()}
        ctx.output.error_line(error.line())
        ctx.output.annotate("error", f"arbiter-ops deploy to {ctx.env_name} failed", error.line())
    ok = outcome.ok
    verdict = f"deployed {plan.tag} to {ctx.env_name}" if ok else f"deploy of {plan.tag} to {ctx.env_name} FAILED"
    rows = [(s.name, s.status, s.duration_ms, s.detail) for s in pipe.steps]
    ctx.output.summary(f"arbiter-ops: {verdict}", ("step", "status", "ms", "detail"), rows, table=False)
    verdicts = [(n, v["verdict"], v["failed_tasks"], v["cause"] or "") for n, v in doc["services"].items()]
    ctx.output.summary("services", ("service", "verdict", "failed tasks", "cause"), verdicts, table=False)

    def text() -> None:
        ctx.output.human.print(verdict, markup=False, style="bold green" if ok else "bold red")
        for name, arn in doc["task_definitions"].items():
            ctx.output.human.print(f"  {name}: {arn_name(arn)}", markup=False)

    code = 0 if ok else (error.exit_code if error is not None else 1)
    return finish(ctx, doc, ok, text, exit_code=code)


def _dry_run(ctx: Context, plan: Plan, pipe: Pipeline) -> int:
    """The plan, per-service diffs, and no mutating call (no lock, no register, no migrate, no update)."""
    from arbiter_ops.ecs.taskdef import diff_text

    pipe.skip("lock", "--dry-run")
    error: OpsError | None = None
    try:
        _checks(ctx, plan, pipe)
        with pipe.step("register") as step:
            from arbiter_ops.ecs.plan import register

            register(ctx, plan, dry_run=True)
            step.status = "skipped"
            step.detail = (
                f"would register {', '.join(plan.registered)}" if plan.registered else "task definitions unchanged"
            )
    except OpsError as exc:
        error = exc
    would_update = [s for s in plan.services if s in plan.arns and plan.arns[s] != plan.live_arn(s)]
    for name in ("migrate", "update", "wait", "smoke-test", "unlock"):
        pipe.skip(name, "--dry-run")
    diffs = {}
    for name in plan.services:
        if name in plan.rendered and name in plan.live:
            live = plan.live[name]
            label = str(live["taskDefinitionArn"]) if live else "(none)"
            diffs[name] = diff_text(live, plan.rendered[name], label, f"rendered {name}")
            if diffs[name]:
                ctx.output.err.print(diffs[name], markup=False, highlight=False)
    doc: dict[str, Any] = {
        "image_tag": plan.tag,
        "dry_run": True,
        "steps": pipe.as_json(),
        "task_definitions": {s: plan.live_arn(s) for s in plan.services if plan.live_arn(s)},
        "rolled_back": False,
        "plan": {"register": plan.registered, "update": would_update, "diffs": diffs},
    }
    if error is not None:
        doc["error"] = {"code": error.code, "message": error.line()}
        ctx.output.error_line(error.line())

    def text() -> None:
        if error is not None:
            return  # the error line said it; "nothing to update" would mislead
        verb = "would update" if would_update else "nothing to update"
        ctx.output.human.print(f"dry run of {plan.tag}: {verb} {', '.join(would_update)}".rstrip(), markup=False)

    return finish(ctx, doc, error is None, text, exit_code=0 if error is None else error.exit_code)
