"""`check-secrets [SERVICE...]`: what ECS would find out at task start, found before the deploy.

1. Inputs: the task definitions rendered for --env (no ECS call: the image tag is irrelevant here), or
   the --task-def files (as `render` writes them or as `describe-task-definition` prints them).
2. Fetch: each distinct secret once (GetSecretValue by the ARN without ":KEY:STAGE:VERSION"), each SSM
   parameter's existence with GetParameters in batches of 10. Every payload goes to the redactor the
   moment it arrives, so nothing downstream can print it.
3. Judge: :func:`arbiter_ops.secrets.analysis.analyze`, a pure function.
4. Report: a table (errors first, each with its fix), or the contract's JSON; GitHub annotations and a
   step summary in Actions. Exit 1 if any finding is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arbiter_ops.core.aws import call, error_code
from arbiter_ops.core.context import Context
from arbiter_ops.core.errors import ExternalError, OpsError, UsageError
from arbiter_ops.core.output import REDACTOR
from arbiter_ops.runner import finish
from arbiter_ops.secrets.analysis import (
    Expectations,
    Fetched,
    Finding,
    ServiceRules,
    TaskDefinitionInput,
    analyze,
    json_object,
    references_to_fetch,
    summarize,
)
from arbiter_ops.secrets.rules import is_sensitive
from arbiter_ops.secrets.value_from import SecretRef

SSM_BATCH = 10  # GetParameters takes at most 10 names
RENDER_TAG = "check-secrets"  # any valid tag: secrets do not depend on the image
_ACCESS_HINT = (
    "the caller needs secretsmanager:GetSecretValue on the secret and kms:Decrypt on its KMS key "
    "(`arbiter-ops bootstrap` prints the policy)"
)


def check_secrets_command(ctx: Context, services: list[str], task_defs: list[str]) -> int:
    """Check secret key coverage and hygiene; return the exit code (0 clean, 1 errors found)."""
    wanted = list(dict.fromkeys(services))
    if task_defs:
        inputs, report = _from_files(ctx, task_defs, wanted)
        complete = True  # the files given are the whole picture the user asked about
    else:
        inputs, report, complete = _rendered(ctx, wanted)
    expect = expectations(ctx)
    _redact_plaintext_secrets(inputs)
    fetched = fetch(ctx, references_to_fetch(inputs, expect))
    findings = analyze(inputs, fetched, expect, report_services=report, unused_keys=complete)
    return _report(ctx, findings, sorted({td.service for td in inputs if td.service in report}), len(fetched))


def _redact_plaintext_secrets(inputs: list[TaskDefinitionInput]) -> None:
    """A sensitive value written in plain `environment` is a secret too: never print it either."""
    for td in inputs:
        containers = td.task_definition.get("containerDefinitions")
        for container in containers if isinstance(containers, list) else []:
            entries = container.get("environment") if isinstance(container, dict) else None
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and is_sensitive(str(entry.get("name", ""))):
                    REDACTOR.add(entry.get("value"))


# -- inputs ------------------------------------------------------------------------------------
def _rendered(ctx: Context, wanted: list[str]) -> tuple[list[TaskDefinitionInput], set[str], bool]:
    """Render the wanted services, and the others as context (AUTH_SECRET vs NEXTAUTH_SECRET, unused keys)."""
    from arbiter_ops.commands.render import render_service

    for name in wanted:
        ctx.config.service(name)  # unknown service: exit 2 before anything else
    report = set(wanted or ctx.config.services)
    inputs, complete = [], True
    for name in ctx.config.services:
        try:
            td = render_service(ctx, name, RENDER_TAG)
        except OpsError as exc:
            if name in report:
                raise
            complete = False  # a partial picture: keys used by the missing service would look unused
            ctx.output.detail(f"{name} not rendered as context ({exc.code}); unused keys are not reported")
            continue
        ctx.output.detail(f"rendered {name} ({td.get('family')}) for {ctx.env_name}")
        inputs.append(TaskDefinitionInput(name, td))
    return inputs, report, complete


def _from_files(ctx: Context, paths: list[str], wanted: list[str]) -> tuple[list[TaskDefinitionInput], set[str]]:
    from arbiter_ops.ecs.taskdef import load_task_definition_file

    by_family = {cfg.family: name for name, cfg in ctx.config.services.items()}
    inputs = []
    for path in paths:
        td = load_task_definition_file(path)
        family = td.get("family")
        # The configured service whose family it has, else a service named after its family.
        service = by_family.get(family, family) if isinstance(family, str) and family else Path(path).stem
        ctx.output.detail(f"{path}: task definition of {service}")
        inputs.append(TaskDefinitionInput(service, td))
    present = {td.service for td in inputs}
    unknown = [s for s in wanted if s not in present]
    if unknown:
        raise UsageError(
            f"no --task-def file belongs to {', '.join(unknown)}",
            hint=f"the files given are task definitions of: {', '.join(sorted(present))}",
            code="unknown-service",
        )
    return inputs, set(wanted or present)


def expectations(ctx: Context) -> Expectations:
    env = ctx.env
    return Expectations(
        env_name=ctx.env_name,
        production=ctx.is_production,
        region=ctx.region,
        account_id=ctx.account_id(),
        app_env=env.app_env,
        app_mode=env.app_mode,
        domain=ctx.domain,
        services={
            name: ServiceRules(container=cfg.container, required=tuple(cfg.required))
            for name, cfg in ctx.config.services.items()
        },
    )


# -- fetching ----------------------------------------------------------------------------------
def fetch(ctx: Context, refs: list[SecretRef]) -> dict[tuple[str, str, str | None, str | None], Fetched]:
    out = {ref.fetch_key: _get_secret(ctx, ref) for ref in refs if ref.store == "secretsmanager"}
    names = sorted({ref.secret_id for ref in refs if ref.store == "ssm"})
    found: set[str] = set()
    for i in range(0, len(names), SSM_BATCH):
        found |= _existing_parameters(ctx, names[i : i + SSM_BATCH])
    for ref in refs:
        if ref.store == "ssm":
            out[ref.fetch_key] = Fetched("ok" if ref.secret_id in found else "not-found")
    return out


def _get_secret(ctx: Context, ref: SecretRef) -> Fetched:
    from botocore.exceptions import ClientError

    kwargs: dict[str, Any] = {"SecretId": ref.secret_id}  # moto (and clarity) want no ":KEY::" suffix
    if ref.version_stage:
        kwargs["VersionStage"] = ref.version_stage
    if ref.version_id:
        kwargs["VersionId"] = ref.version_id
    try:
        resp = call(ctx.client("secretsmanager").get_secret_value, **kwargs)
    except ClientError as exc:
        return _secret_error(ref, exc)
    text = resp.get("SecretString")
    binary = resp.get("SecretBinary")
    REDACTOR.add_payload(text)  # first thing: nothing downstream may ever print it
    if isinstance(binary, bytes):
        REDACTOR.add_payload(binary.decode("utf-8", "replace"))
    keys = _key_count(text)
    ctx.output.detail(f"read secret {ref.describe()}: {keys}")
    return Fetched("ok", payload=text if isinstance(text, str) else None, arn=resp.get("ARN"))


def _key_count(text: Any) -> str:
    obj = json_object(text if isinstance(text, str) else None)
    return f"{len(obj)} keys" if obj is not None else "not a JSON object"


def _secret_error(ref: SecretRef, exc: Exception) -> Fetched:
    code = error_code(exc)
    aws_message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", ""))[:300]
    if code == "ResourceNotFoundException":
        detail = "or it has no version in that stage" if ref.version_stage or ref.version_id else None
        return Fetched("not-found", detail=detail)
    if code == "InvalidRequestException":  # GetSecretValue says so for a secret scheduled for deletion
        return Fetched("not-found", detail="it is scheduled for deletion")
    if code in ("InvalidParameterException", "ValidationException"):
        return Fetched("invalid", detail=aws_message or code)
    hint = "the caller needs kms:Decrypt on the secret's KMS key" if code == "DecryptionFailure" else _ACCESS_HINT
    raise ExternalError(
        f"cannot read secret {ref.describe()}: AWS answered {code or 'an error'}: {aws_message}",
        hint=hint,
        code="aws-access-denied" if "AccessDenied" in code else "aws-error",
    ) from None


def _existing_parameters(ctx: Context, names: list[str]) -> set[str]:
    from botocore.exceptions import ClientError

    try:
        resp = call(ctx.client("ssm").get_parameters, Names=names, WithDecryption=False)
    except ClientError as exc:
        raise ExternalError(
            f"cannot check SSM parameters {', '.join(names)}: AWS answered {error_code(exc) or 'an error'}",
            hint="the caller needs ssm:GetParameters on them",
        ) from None
    found = set()
    for param in resp.get("Parameters", []):
        REDACTOR.add(param.get("Value"))  # existence is all we need; the value must not travel further
        found.add(str(param.get("Name")))
    ctx.output.detail(f"SSM: {len(found)} of {len(names)} parameters exist")
    return found


# -- reporting ---------------------------------------------------------------------------------
def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _summary_line(ctx: Context, counts: dict[str, int], services: list[str], reads: int) -> str:
    what = ", ".join(services) or "no service"
    return (
        f"check-secrets {ctx.env_name} ({what}): {_plural(counts['error'], 'error')}, "
        f"{_plural(counts['warning'], 'warning')}, {counts['info']} info; {_plural(reads, 'secret')} read"
    )


def _tables(findings: list[Finding]) -> list[Any]:
    """One borderless table per service / container (errors first), then the secret-level findings."""
    from rich.table import Table

    style = {"error": "bold red", "warning": "yellow", "info": "dim"}
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:  # already sorted: errors first
        groups.setdefault((f.service or "", f.container or ""), []).append(f)
    order = sorted(groups, key=lambda g: (min(_rank(f) for f in groups[g]), g[0] == "", g))
    tables = []
    for service, container in order:
        title = f"{service} / container {container}" if service else "secrets"
        table = Table(title=title, title_justify="left", title_style="bold", box=None, show_header=False)
        table.add_column("severity", width=7, no_wrap=True)
        table.add_column("code", width=20, no_wrap=True)
        table.add_column("finding", overflow="fold")
        for f in groups[(service, container)]:
            table.add_row(
                f"[{style[f.severity]}]{f.severity}[/]", f.code, f"{_escape(f.message)}\n[dim]fix: {_escape(f.fix)}[/]"
            )
        tables.append(table)
    return tables


def _rank(f: Finding) -> int:
    return {"error": 0, "warning": 1, "info": 2}[f.severity]


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _markdown(ctx: Context, findings: list[Finding], line: str) -> str:
    def cell(text: str | None) -> str:
        return (text or "").replace("|", "\\|").replace("\n", " ")

    rows = [f"### arbiter-ops check-secrets: {ctx.env_name}", "", line, ""]
    if findings:
        rows += [
            "| Severity | Code | Service | Container | Variable | Secret key | Problem | Fix |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        rows += [
            f"| {f.severity} | `{f.code}` | {cell(f.service)} | {cell(f.container)} | {cell(f.name)} | "
            f"{cell(f.key)} | {cell(f.message)} | {cell(f.fix)} |"
            for f in findings
        ]
    return "\n".join(rows)


def _report(ctx: Context, findings: list[Finding], services: list[str], reads: int) -> int:
    counts = summarize(findings)
    ok = counts["error"] == 0
    line = _summary_line(ctx, counts, services, reads)
    out = ctx.output
    if out.github:
        for f in findings:
            if f.severity in ("error", "warning"):
                where = "/".join(p for p in (f.service, f.container, f.name) if p)
                out.annotate(f.severity, f"check-secrets {f.code}", f"{where}: {f.message}. Fix: {f.fix}")
        out.step_summary(_markdown(ctx, findings, line))

    def text() -> None:
        from rich.text import Text

        for table in _tables(findings):
            out.print_rich(table)
        out.print_rich(Text(line, style="bold red" if not ok else "bold green"))

    if out.mode == "json" and not out.quiet:
        out.info(line)
    return finish(
        ctx,
        {"findings": [f.as_json() for f in findings], "summary": counts},
        ok,
        text=text,
        exit_code=0 if ok else 1,
    )


def findings_for(ctx: Context, task_definitions: dict[str, dict[str, Any]]) -> list[Finding]:
    """The findings for already rendered task definitions (deploy's gate, smoke-test's `secrets` check)."""
    inputs = [TaskDefinitionInput(name, td) for name, td in task_definitions.items()]
    expect = expectations(ctx)
    _redact_plaintext_secrets(inputs)
    fetched = fetch(ctx, references_to_fetch(inputs, expect))
    complete = set(task_definitions) == set(ctx.config.services)
    return analyze(inputs, fetched, expect, report_services=set(task_definitions), unused_keys=complete)
