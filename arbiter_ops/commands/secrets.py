"""`secrets import FILE` / `secrets set KEY` / `secrets diff ENV_A ENV_B`: the environment's secret, from a dotenv
file or one value on stdin, and two environments' secrets side by side. No value is ever printed.

import / set:
1. Read: the dotenv file (:mod:`arbiter_ops.secrets.dotenv_file`), or exactly one value from stdin (never argv:
   shell history and the process list would keep it).
2. Plan: the secret's AWSCURRENT read once; keys added, changed (lengths at most), unchanged, and with --replace
   removed (:mod:`arbiter_ops.secrets.importer`).
3. Judge: check-secrets' value rules on the secret as it would be; an error refuses the write (exit 1), naming
   each key.
4. Write: the compare-and-set merge of :mod:`arbiter_ops.secrets.store` (other keys and AWSPREVIOUS kept), or
   CreateSecret. Nothing to change, or --dry-run: no write call at all.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arbiter_ops.commands import option
from arbiter_ops.core.errors import UsageError
from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context
    from arbiter_ops.secrets.analysis import Finding

KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_STDIN = 65536


@dataclass(frozen=True)
class SecretsImportOptions:
    file: str = option("", "The dotenv file (KEY=value lines; comments, quotes and `export` allowed).")
    dry_run: bool = option(False, "Show the plan and write nothing.")
    replace: bool = option(False, "Remove the secret's keys that the file does not have.")


@dataclass(frozen=True)
class SecretsSetOptions:
    key: str = option("", "The key to set; its value is read from stdin (never from the command line).")
    dry_run: bool = option(False, "Show the plan and write nothing.")


@dataclass(frozen=True)
class SecretsDiffOptions:
    env_a: str = option("", "The first environment (e.g. staging).")
    env_b: str = option("", "The second environment (e.g. production).")


def run_import(ctx: Context, opts: SecretsImportOptions) -> int:
    from arbiter_ops.secrets.dotenv_file import read_dotenv

    if not opts.file.strip():
        raise UsageError("FILE is empty", hint="give the path of a dotenv file", code="bad-dotenv")
    dotenv = read_dotenv(opts.file)
    for warning in dotenv.warnings:
        ctx.output.warn(warning)
    return _write(ctx, dotenv.values, dry_run=opts.dry_run, replace=opts.replace, source=opts.file)


def run_set(ctx: Context, opts: SecretsSetOptions) -> int:
    import json

    from arbiter_ops.core.redact import REDACTOR
    from arbiter_ops.secrets.value_from import looks_like_secret_value

    if looks_like_secret_value(opts.key):  # a value pasted where the name belongs: never echo it
        raise UsageError(
            "KEY looks like a secret value, not a variable name",
            hint='give the name as KEY and pipe the value: printf %s "$VALUE" | arbiter-ops secrets set NAME',
            code="bad-key",
        )
    if not KEY.fullmatch(opts.key):
        raise UsageError(
            f"{opts.key[:60]!r} is not a variable name",
            hint="letters, digits and _ (e.g. STRIPE_PRICE_ID)",
            code="bad-key",
        )
    value = _read_stdin(opts.key)
    REDACTOR.add_payload(json.dumps({opts.key: value}))  # as a fetched payload: the sensitive keys' values
    return _write(ctx, {opts.key: value}, dry_run=opts.dry_run, replace=False, source="stdin")


def _read_stdin(key: str) -> str:
    """One value: a hidden prompt at a terminal, else all of stdin less one trailing newline."""
    if sys.stdin is None:
        raise UsageError("no stdin to read the value from", hint=f"printf %s VALUE | arbiter-ops secrets set {key}")
    if sys.stdin.isatty():
        import typer

        value = str(typer.prompt(f"value for {key}", hide_input=True, err=True))
    else:
        value = sys.stdin.read(MAX_STDIN + 1)
        if len(value) > MAX_STDIN:
            raise UsageError(f"the value on stdin is longer than {MAX_STDIN} characters", code="bad-value")
        value = value[:-2] if value.endswith("\r\n") else value[:-1] if value.endswith("\n") else value
    if not value:
        raise UsageError(
            f"no value for {key} on stdin",
            hint=f'pipe exactly one value: printf %s "$VALUE" | arbiter-ops secrets set {key}',
            code="empty-value",
        )
    if "\n" in value or "\r" in value:
        raise UsageError(
            f"stdin holds more than one line for {key}",
            hint="pipe exactly one value; for a multi-line value use `secrets import` with a quoted value",
            code="bad-value",
        )
    return value


def _write(ctx: Context, values: dict[str, str], *, dry_run: bool, replace: bool, source: str) -> int:
    from arbiter_ops.core.errors import Refused
    from arbiter_ops.secrets import importer
    from arbiter_ops.secrets.check import expectations, rendered_inputs
    from arbiter_ops.secrets.store import read_current_or_none

    secret_id = ctx.secret_id
    inputs = rendered_inputs(ctx)  # a template or config error is exit 2 before any AWS call
    client = ctx.client("secretsmanager")
    snapshot = read_current_or_none(client, secret_id)
    current = snapshot.payload if snapshot else None
    plan = importer.plan_of(secret_id, current, values, replace)
    payload = importer.after(current, values, replace)
    arn = snapshot.arn if snapshot else None
    findings = importer.value_findings(inputs, secret_id, arn, payload, values, expectations(ctx))
    blocking = [f for f in findings if importer.refuses(f)]
    used = importer.referenced_keys(inputs, secret_id, arn)
    dropped = [k for k in plan.removed if k in used]  # --replace must not take a key a container needs
    doc: dict[str, Any] = {
        "secret": secret_id,
        "source": source,
        "dry_run": dry_run,
        "replace": replace,
        "plan": plan.as_json(),
        "findings": [f.as_json() for f in findings],
        "written": False,
        "created": False,
    }
    if blocking:
        keys = sorted({f.key or f.name or "" for f in blocking})
        message = (
            f"refusing to write {secret_id}: {len(keys)} key(s) hold values check-secrets rejects: {', '.join(keys)}"
        )
        return _refuse(ctx, doc, findings, message, "fix those values (the findings say how), then run again")
    if dropped:
        why = "; ".join(f"{k} is referenced by the {' and '.join(used[k])}" for k in dropped)
        message = f"refusing to remove {', '.join(dropped)} from {secret_id}: {why}"
        return _refuse(ctx, doc, findings, message, "keep them in the file, or change the templates first")
    size = importer.too_large(payload)
    if size:
        raise Refused(f"{secret_id} would hold {size} bytes: Secrets Manager takes at most 65536", code="too-large")
    if plan.writes and not dry_run:
        ctx.confirm_production(f"write {len(plan.updates(values)) + len(plan.removed)} key(s) of {secret_id}")
        doc.update(_apply(ctx, client, plan, values, payload))
    return finish(ctx, doc, True, text=lambda: _text(ctx, doc, plan, findings))


def _apply(ctx: Context, client: Any, plan: Any, values: dict[str, str], payload: dict[str, Any]) -> dict[str, Any]:
    from arbiter_ops.secrets.store import create_json_secret, merge_keys

    if not plan.exists:
        version = create_json_secret(client, plan.secret_id, payload)
        if version is not None:
            ctx.output.detail(f"created secret {plan.secret_id}")
            return {"written": True, "created": True, "version_id": version}
    result = merge_keys(
        client,
        plan.secret_id,
        plan.updates(values),
        remove=frozenset(plan.removed),
        on_conflict=lambda n: ctx.output.info(f"{plan.secret_id} changed meanwhile: merging again (attempt {n + 1})"),
    )
    return {"written": result.changed, "created": False, "version_id": result.version_id}


def _findings_text(ctx: Context, findings: list[Finding]) -> None:
    for f in findings:
        ctx.output.human.print(f"  {f.severity} {f.code}: {f.message} (fix: {f.fix})", markup=False)


def _text(ctx: Context, doc: dict[str, Any], plan: Any, findings: list[Finding]) -> None:
    out = ctx.output
    head = "new secret " if not plan.exists else ""
    out.human.print(f"{ctx.command} -> {head}{plan.secret_id} ({ctx.env_name}): {plan.verdict()}", markup=False)
    for line in plan.lines():
        out.human.print(line, markup=False)
    _findings_text(ctx, findings)
    if doc["dry_run"]:
        verdict = "dry run: nothing written"
    elif doc["written"]:
        verdict = f"written: version {doc['version_id']} is current" + (
            ", the previous one is AWSPREVIOUS" if plan.exists else ""
        )
    else:
        verdict = "nothing to change: nothing written"
    out.human.print(verdict, markup=False)


def _refuse(ctx: Context, doc: dict[str, Any], findings: list[Finding], message: str, hint: str) -> int:
    """A refusal that still shows the findings: the one error line, and the error document with them."""
    doc["error"] = {"code": "invalid-values", "message": f"{message}; {hint}"}
    code = finish(ctx, doc, False, text=lambda: _findings_text(ctx, findings), exit_code=1)
    ctx.output.failure_line(f"{message}; {hint}")
    ctx.output.annotate("error", f"arbiter-ops {ctx.command} refused", message)
    return code


def run_diff(ctx: Context, opts: SecretsDiffOptions) -> int:
    from arbiter_ops.secrets.diff import compare, side

    if opts.env_a == opts.env_b:
        raise UsageError(f"both environments are {opts.env_a!r}", hint="name two different environments", code="usage")
    for name in (opts.env_a, opts.env_b):
        ctx.config.environment(name)  # an unknown environment is bad input before any AWS call
    a, b = side(ctx, opts.env_a), side(ctx, opts.env_b)
    result = compare(a, b)
    ok = not result.problems

    def text() -> None:
        from rich.table import Table

        table = Table(title=f"{a.env} ({a.secret}) vs {b.env} ({b.secret})", title_justify="left")
        for col in ("key", a.env, b.env, "note"):
            table.add_column(col, overflow="fold")
        for row in result.rows:
            table.add_row(row.key, row.kind_a or "-", row.kind_b or "-", row.note)
        ctx.output.print_rich(table)
        ctx.output.human.print(result.verdict(), markup=False)

    return finish(ctx, result.as_json(), ok, text=text, exit_code=0 if ok else 1)
