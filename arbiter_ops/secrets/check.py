"""check-secrets of already rendered task definitions: what the environment expects, what the references
resolve to, and the findings (:func:`arbiter_ops.secrets.analysis.analyze`). `check-secrets`, deploy's gate and
the smoke test's `secrets` check all judge through here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arbiter_ops.core.errors import Refused
from arbiter_ops.core.redact import REDACTOR
from arbiter_ops.secrets.analysis import (
    Expectations,
    Finding,
    ServiceRules,
    TaskDefinitionInput,
    analyze,
    references_to_fetch,
)
from arbiter_ops.secrets.fetch import fetch_references
from arbiter_ops.secrets.rules import is_sensitive
from arbiter_ops.secrets.value_from import looks_like_secret_value

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

RENDER_TAG = "check-secrets"  # any valid tag: secrets do not depend on the image


def gate(ctx: Context, task_definitions: dict[str, dict[str, Any]]) -> str:
    """check-secrets in front of a change (deploy, migrate): the counts, or Refused (exit 1) naming the errors."""
    findings = findings_for(ctx, task_definitions)
    errors = [f for f in findings if f.severity == "error"]
    warnings = [f for f in findings if f.severity == "warning"]
    if errors:
        listed = "; ".join(f"{f.code} {f.service or ''}/{f.name or f.key or ''}" for f in errors[:5])
        raise Refused(
            f"check-secrets found {len(errors)} error(s): {listed}",
            hint=f"run `arbiter-ops --env {ctx.env_name} check-secrets` for the fixes",
            code="secrets",
        )
    return f"{len(errors)} errors, {len(warnings)} warnings"


def judge(
    ctx: Context, inputs: list[TaskDefinitionInput], report_services: set[str], unused_keys: bool
) -> tuple[list[Finding], int]:
    """(the findings, how many references were read) for these task definitions in ctx's environment."""
    expect = expectations(ctx)
    redact_plaintext_secrets(inputs)
    fetched = fetch_references(ctx, references_to_fetch(inputs, expect))
    return analyze(inputs, fetched, expect, report_services=report_services, unused_keys=unused_keys), len(fetched)


def rendered_inputs(ctx: Context) -> list[TaskDefinitionInput]:
    """Every configured service's task definition rendered for ctx's environment (no ECS call: the image tag does
    not matter to secrets); a template or config error is bad input (exit 2)."""
    from arbiter_ops.ecs.render import render_service

    return [TaskDefinitionInput(name, render_service(ctx, name, RENDER_TAG)) for name in ctx.config.services]


def findings_for(ctx: Context, task_definitions: dict[str, dict[str, Any]]) -> list[Finding]:
    """The findings for already rendered task definitions (deploy's gate, smoke-test's `secrets` check)."""
    inputs = [TaskDefinitionInput(name, td) for name, td in task_definitions.items()]
    complete = set(task_definitions) == set(ctx.config.services)
    return judge(ctx, inputs, set(task_definitions), complete)[0]


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


def redact_plaintext_secrets(inputs: list[TaskDefinitionInput]) -> None:
    """A sensitive value written in plain `environment`, or a secret pasted where its reference belongs
    (`valueFrom`), is a secret too: never print it either."""
    for td in inputs:
        containers = td.task_definition.get("containerDefinitions")
        for container in containers if isinstance(containers, list) else []:
            if not isinstance(container, dict):
                continue
            for entry in _entries(container, "environment"):
                if is_sensitive(str(entry.get("name", ""))):
                    REDACTOR.add(entry.get("value"))
            for entry in _entries(container, "secrets"):
                value_from = entry.get("valueFrom")
                if isinstance(value_from, str) and looks_like_secret_value(value_from):
                    REDACTOR.add(value_from)


def _entries(container: dict[str, Any], name: str) -> list[dict[str, Any]]:
    entries = container.get(name)
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
