"""`stripe-webhook [--dry-run] [--prune] [--rotate] [--check]`: the guide's Step 6, idempotent.

1. Read the environment's secret (JSON object, else refused) and take STRIPE_SECRET_KEY from it; a key of
   the wrong mode is refused (exit 1) before any Stripe request.
2. List the endpoints (all pages) and plan (:func:`arbiter_ops.billing.webhook.plan`): create, update drifted
   events/status/metadata, report duplicates on the URL (delete them with --prune), or nothing at all.
3. Apply, after production confirmation when anything changes. A created endpoint's signing secret (shown
   by Stripe only then) is merged into the secret with a compare-and-set (:mod:`arbiter_ops.secrets.store`).

`--rotate` replaces the endpoint without a gap, under the deploy lock: create, store, restart the backend,
check, and only then delete the old endpoint (:mod:`arbiter_ops.billing.rotation` finds where an interrupted
one stands, :mod:`arbiter_ops.billing.rotate` runs the steps left). A plain run never deletes the endpoint an
unfinished rotation replaces: it says to finish it.

The signing secret is never printed: it is registered with the redactor the moment Stripe returns it, and
no result, message or summary is built from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from arbiter_ops.commands import option
from arbiter_ops.core.errors import OpsError, UsageError
from arbiter_ops.core.polling import WAIT_TIMEOUT
from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.billing.rotation import Rotation
    from arbiter_ops.billing.webhook import (
        Action,
        Endpoint,
        Plan,
        WebhookCheck,
    )
    from arbiter_ops.core.context import Context
    from arbiter_ops.secrets import store as secret_store


@dataclass
class Outcome:
    """What happened, for the text rendering, the JSON document and the step summary."""

    plan: Plan
    dry_run: bool
    endpoint: Endpoint | None
    done: list[Action] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    secret_stored: bool = False
    stored: secret_store.MergeResult | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rotation: Rotation | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class StripeWebhookOptions:
    dry_run: bool = option(False, "Show what would change; change nothing.")
    prune: bool = option(False, "Delete other endpoints on the same URL.")
    rotate: bool = option(
        False, "Replace the endpoint and its secret without a gap (restarts the backend); a re-run resumes."
    )
    check: bool = option(False, "Report the endpoint and prove the stored secret works.")
    timeout: float = option(WAIT_TIMEOUT, "Seconds to wait for the backend's restart (--rotate).")


def run(ctx: Context, opts: StripeWebhookOptions) -> int:
    dry_run, prune, rotate, check = opts.dry_run, opts.prune, opts.rotate, opts.check
    from arbiter_ops.billing import stripe_client as stripe_api
    from arbiter_ops.billing.webhook import (
        BROKEN,
        SECRET_KEY,
        Endpoint,
        desired_state,
        inspect_webhook,
        plan,
        secret_status,
    )
    from arbiter_ops.secrets import store as secret_store

    if check and (dry_run or prune or rotate):
        raise UsageError("--check only reports; it cannot be combined with --dry-run, --prune or --rotate")
    if check:
        return _report_check(ctx, inspect_webhook(ctx))
    out = ctx.output
    sm = ctx.client("secretsmanager")
    snapshot = secret_store.read_current(sm, ctx.secret_id)
    out.detail(f"read secret {ctx.secret_id}: {len(snapshot.payload)} keys, version {snapshot.version_id}")
    key = stripe_api.checked_key(
        snapshot.payload, production=ctx.is_production, env_name=ctx.env_name, secret_id=ctx.secret_id
    )
    cfg = ctx.config.stripe
    desired = desired_state(ctx.base_url(), cfg.webhook_path, cfg.webhook_events)
    out.info(f"Stripe webhook of {ctx.env_name} ({stripe_api.key_mode(key)} mode): {desired.url}")
    client = stripe_api.make_client(key, ctx.stripe_api_base())
    listed = stripe_api.list_webhook_endpoints(client)
    stored = snapshot.payload.get(SECRET_KEY)
    if rotate:
        return _rotate(ctx, opts, client, desired, listed, stored)
    current = plan(desired, listed, stored_secret=stored, rotate=rotate, prune=prune)
    out.detail(f"Stripe lists {len(listed)} endpoint(s); {len(current.duplicates) + bool(current.primary)} on this URL")
    for obj in listed:
        out.detail(f"  {Endpoint.from_stripe(obj).describe()} -> {obj.get('url')}", level=2)

    outcome = Outcome(current, dry_run, current.primary)
    if _rotation_unfinished(ctx, outcome, listed):
        return _report(ctx, outcome)
    kept = [d.id for d in current.duplicates if not d.managed and not prune]
    if kept:  # not converged: exactly one endpoint is the contract
        outcome.problems.append(
            f"{len(kept)} endpoint(s) arbiter-ops did not create also serve {desired.url} and receive every event "
            f"again: {', '.join(kept)}; delete them with `arbiter-ops stripe-webhook --env {ctx.env_name} --prune`"
        )
    if current.primary is not None and not rotate:
        status, words = secret_status(stored, current.primary)
        if status in BROKEN:
            if ctx.options.yes:  # the "(or do it with --yes)": recreate to get a secret we can store
                outcome.notes.append(f"{words}; --yes given: recreating the endpoint to get a new one")
                current = outcome.plan = plan(desired, listed, stored_secret=stored, rotate=True, prune=prune)
            else:
                outcome.problems.append(
                    f"{words}. Stripe shows a signing secret only when an endpoint is created: run "
                    f"`arbiter-ops stripe-webhook --env {ctx.env_name} --rotate` (or add --yes) to recreate "
                    "the endpoint and store its new secret"
                )
        elif status == "unverified":
            out.detail(words)

    if not dry_run and current.changes:
        ctx.confirm_production(f"apply {len(current.actions)} change(s) to the Stripe webhook at {desired.url}")
        _apply(ctx, client, sm, outcome)
    return _report(ctx, outcome)


def _rotation_unfinished(ctx: Context, outcome: Outcome, listed: list[dict[str, Any]]) -> bool:
    """An unfinished rotation's old endpoint is no duplicate: the running tasks may still verify with its secret."""
    from arbiter_ops.billing.rotation import in_progress

    ongoing = in_progress(outcome.plan.desired, listed)
    if ongoing:
        outcome.plan.actions = []
        outcome.problems.append(
            f"a rotation is unfinished (new endpoint {ongoing[-1].id}): finish it with `arbiter-ops --env "
            f"{ctx.env_name} stripe-webhook --rotate`; until then both endpoints stay"
        )
    return bool(ongoing)


def _rotate(
    ctx: Context, opts: StripeWebhookOptions, client: Any, desired: Any, listed: list[dict[str, Any]], stored: Any
) -> int:
    from arbiter_ops.billing.rotate import rotate_locked
    from arbiter_ops.billing.rotation import find
    from arbiter_ops.billing.webhook import Action, Plan, plan

    out, env = ctx.output, ctx.env_name
    rotation = find(desired, listed, stored)
    current = plan(desired, listed, stored_secret=stored, prune=opts.prune)
    others = [d for d in rotation.others(current.duplicates) if d.managed or opts.prune]
    deletes = [Action("delete", d.id, "a duplicate on the same URL, deleted after the rotation") for d in others]
    outcome = Outcome(Plan(desired, current.primary, current.duplicates, deletes), opts.dry_run, rotation.old)
    outcome.rotation = rotation
    was = f"replacing {rotation.old.id}" if rotation.old else "no endpoint to replace"
    out.info(f"{'resuming' if rotation.resumed else 'starting'} rotation {rotation.rotation_id} ({was})")
    if opts.dry_run:
        rotation.dry_run()
        return _report(ctx, outcome)
    ctx.confirm_production(f"rotate the Stripe webhook at {desired.url} (restarts the backend)")
    resume = f"run `arbiter-ops --env {env} stripe-webhook --rotate` again to resume"
    try:
        applied = rotate_locked(ctx, client, desired, rotation, opts.timeout, others, say=out.info)
    except OpsError as exc:
        raise type(exc)(f"{exc.message}; {rotation.standing()}; {resume}", hint=exc.hint, code=exc.code) from None
    except KeyboardInterrupt:
        out.warn(f"{rotation.standing()}: {resume}")
        raise
    outcome.done += deletes
    kept = [d.id for d in rotation.others(current.duplicates) if d.id not in applied.deleted]
    if kept:
        outcome.problems.append(
            f"{len(kept)} endpoint(s) arbiter-ops did not create also serve {desired.url}: {', '.join(kept)}; "
            f"delete them with `arbiter-ops stripe-webhook --env {env} --prune`"
        )
    outcome.endpoint, outcome.deleted = rotation.new, set(applied.deleted)
    outcome.secret_stored, outcome.stored = applied.stored is not None, applied.stored
    return _report(ctx, outcome)


def _apply(ctx: Context, client: Any, sm: Any, outcome: Outcome) -> None:
    from arbiter_ops.billing.webhook import SECRET_KEY

    try:
        _apply_actions(ctx, client, sm, outcome)
    except OpsError as exc:
        if not outcome.secret_stored or outcome.endpoint is None:
            raise
        # A later step failed (e.g. deleting the rotated endpoint): say what already happened, since
        # the new secret is live for new tasks and a re-run will see the old endpoint as a duplicate.
        raise type(exc)(
            f"{exc.message} (already done: endpoint {outcome.endpoint.id} created and its {SECRET_KEY} stored; "
            "run again, with --prune if an old endpoint remains)",
            hint=exc.hint,
            code=exc.code,
        ) from None


def _apply_actions(ctx: Context, client: Any, sm: Any, outcome: Outcome) -> None:
    from arbiter_ops.billing import stripe_client as stripe_api
    from arbiter_ops.billing.webhook import Endpoint

    out = ctx.output
    new_secret: str | None = None
    for action in outcome.plan.actions:
        if action.kind == "create":
            obj = stripe_api.create_webhook_endpoint(client, action.params)  # secret registered for redaction
            new_secret = obj.get("secret")
            outcome.endpoint = Endpoint.from_stripe(obj)
            out.info(f"created webhook endpoint {outcome.endpoint.id}")
        elif action.kind == "store-secret":
            assert outcome.endpoint is not None
            _store_secret(ctx, client, sm, outcome, new_secret)
            _record_fingerprint(ctx, client, outcome.endpoint, new_secret)
        elif action.kind == "update":
            assert action.endpoint is not None
            outcome.endpoint = Endpoint.from_stripe(
                stripe_api.update_webhook_endpoint(client, action.endpoint, action.params)
            )
            out.info(f"updated webhook endpoint {action.endpoint}: {action.reason}")
        elif action.kind == "delete":
            assert action.endpoint is not None
            stripe_api.delete_webhook_endpoint(client, action.endpoint)
            outcome.deleted.add(action.endpoint)
            out.info(f"deleted webhook endpoint {action.endpoint} ({action.reason})")
        outcome.done.append(action)


def _store_secret(ctx: Context, client: Any, sm: Any, outcome: Outcome, new_secret: str | None) -> None:
    from arbiter_ops.billing.signing import store_or_undo
    from arbiter_ops.billing.webhook import SECRET_KEY

    created = outcome.endpoint
    assert created is not None
    # The secret is lost with this process: take the endpoint away again rather than leave one whose events the
    # app can never verify. A --rotate keeps its old endpoint (deleted only after this).
    result = store_or_undo(ctx, client, created.id, new_secret, if_not_deleted="run with --rotate to replace it")
    outcome.secret_stored, outcome.stored = True, result
    ctx.output.info(
        f"stored {SECRET_KEY} in {ctx.secret_id} (version {result.version_id}; the previous one is kept as "
        f"AWSPREVIOUS{'' if result.attempts == 1 else f'; {result.attempts} attempts'})"
    )
    outcome.notes.append(
        f"running tasks keep the old {SECRET_KEY} until they restart: run "
        f"`arbiter-ops deploy --env {ctx.env_name} --force-new-deployment`"
    )


def _record_fingerprint(ctx: Context, client: Any, endpoint: Endpoint, secret: str | None) -> None:
    """Let `--check` prove later that the stored secret is this endpoint's (see arbiter_ops.billing.webhook)."""
    from arbiter_ops.billing import stripe_client as stripe_api
    from arbiter_ops.billing.webhook import FINGERPRINT_KEY, fingerprint

    if not secret:
        return
    try:
        stripe_api.update_webhook_endpoint(client, endpoint.id, {"metadata": {FINGERPRINT_KEY: fingerprint(secret)}})
    except OpsError as exc:  # the endpoint and secret are fine; only the later proof is weaker
        ctx.output.warn(f"could not record the secret fingerprint on {endpoint.id}: {exc.line()}")


# -- reporting -----------------------------------------------------------------------------------
def _duplicates(outcome_plan: Plan, deleted: set[str]) -> list[dict[str, Any]]:
    return [{**d.as_json(), "managed": d.managed, "deleted": d.id in deleted} for d in outcome_plan.duplicates]


def _lines(ctx: Context, outcome: Outcome) -> list[tuple[str, str]]:
    """(text, style) lines of the human result."""
    p = outcome.plan
    lines = [(f"endpoint URL: {p.desired.url}", "")]
    lines.append((f"found: {p.primary.describe()}" if p.primary else "found: no endpoint on this URL", ""))
    for d in p.duplicates:
        fate = "deleted" if d.id in outcome.deleted else "kept (--prune deletes it)"
        lines.append((f"duplicate on the same URL: {d.describe()}: {fate}", "yellow"))
    if p.duplicates and not all(d.id in outcome.deleted for d in p.duplicates):
        lines.append(("every event is delivered once per endpoint on the URL: --prune deletes the others", "yellow"))
    for action in p.actions:
        if outcome.dry_run or action in outcome.done:
            lines.append((_action_line(ctx, outcome, action), "cyan"))
    if outcome.rotation is not None:
        lines += [(line, "cyan") for line in outcome.rotation.lines()]
    lines += [(f"problem: {m}", "bold red") for m in outcome.problems]
    lines += [(f"note: {m}", "yellow") for m in outcome.notes]
    lines.append((_summary(ctx, outcome), "bold green" if outcome.ok else "bold red"))
    return lines


def _action_line(ctx: Context, outcome: Outcome, action: Action) -> str:
    from arbiter_ops.billing.webhook import SECRET_KEY

    if action.kind == "store-secret":
        if outcome.dry_run:
            return f"would store the new endpoint's signing secret as {SECRET_KEY} in {ctx.secret_id}"
        version = outcome.stored.version_id if outcome.stored else "?"
        return f"stored {SECRET_KEY} in {ctx.secret_id} (version {version}; the previous one is AWSPREVIOUS)"
    if action.kind == "create":
        target = "an endpoint" if outcome.dry_run or outcome.endpoint is None else outcome.endpoint.id
    else:
        target = str(action.endpoint)
    verb = {"create": "create", "update": "update", "delete": "delete"}[action.kind]
    return f"{'would ' + verb if outcome.dry_run else verb + 'd'} {target}: {action.reason}"


def _summary(ctx: Context, outcome: Outcome) -> str:
    n = len(outcome.plan.actions) + (outcome.rotation.changes() if outcome.rotation else 0)
    head = f"stripe-webhook {ctx.env_name}:"
    if outcome.dry_run:
        return f"{head} dry run, {n} change(s) would be made" if n else f"{head} up to date (dry run)"
    state = f"{n} change(s) applied" if n else "up to date, nothing changed"
    return f"{head} {state}" + ("" if outcome.ok else "; the signing secret needs attention")


def _markdown(ctx: Context, title: str, rows: list[tuple[str, str]]) -> str:
    body = "\n".join("- " + text for text, _ in rows)
    return f"### arbiter-ops {title}: {ctx.env_name}\n\n{body}"


def _emit(ctx: Context, doc: dict[str, Any], ok: bool, lines: list[tuple[str, str]], title: str) -> int:
    out = ctx.output
    if out.github:
        for text, style in lines:
            if style == "bold red" and text.startswith("problem: "):
                out.annotate("error", f"arbiter-ops {title}", text.removeprefix("problem: "))
        out.step_summary(_markdown(ctx, title, lines))

    def text() -> None:
        from rich.text import Text

        for line, style in lines:
            out.print_rich(Text(line, style=style or ""))

    if out.mode == "json" and not out.quiet:
        out.info(lines[-1][0])
    return finish(ctx, doc, ok, text=text, exit_code=0 if ok else 1)


def _report(ctx: Context, outcome: Outcome) -> int:
    doc = {
        "dry_run": outcome.dry_run,
        "endpoint": outcome.endpoint.as_json() if outcome.endpoint else None,
        "actions": (outcome.rotation.actions_json() if outcome.rotation else [])
        + [a.as_json(done=a in outcome.done) for a in outcome.plan.actions],
        "secret_stored": outcome.secret_stored,
        "duplicates": _duplicates(outcome.plan, outcome.deleted),
        "problems": outcome.problems,
        "notes": outcome.notes,
    }
    if outcome.rotation is not None:
        doc["rotation"] = outcome.rotation.as_json()
    return _emit(ctx, doc, outcome.ok, _lines(ctx, outcome), "stripe-webhook")


def _report_check(ctx: Context, result: WebhookCheck) -> int:
    lines = [(f"found: {result.endpoint.describe()}" if result.endpoint else "found: no endpoint on this URL", "")]
    lines += [(f"problem: {m}", "bold red") for m in result.problems]
    lines += [(f"note: {m}", "green") for m in result.notes]
    verdict = "passed" if result.ok else "failed"
    lines.append((f"stripe-webhook --check {ctx.env_name}: {verdict}", "bold green" if result.ok else "bold red"))
    doc = {
        "endpoint": result.endpoint.as_json() if result.endpoint else None,
        "actions": [],
        "secret_stored": False,
        "duplicates": [{**d.as_json(), "managed": d.managed, "deleted": False} for d in result.duplicates],
        "check": {"ok": result.ok, "secret": result.secret, "problems": result.problems, "notes": result.notes},
    }
    return _emit(ctx, doc, result.ok, lines, "stripe-webhook --check")
