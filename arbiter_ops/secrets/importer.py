"""`secrets import` and `secrets set`: judge new values with check-secrets' own rules, plan the change without a
value, and write it with the compare-and-set of :mod:`.store` (or create the secret).

Judging: the task definitions rendered for the environment are analysed (:func:`.analysis.analyze`) against the
secret *as it would be after the write*, so every value rule applies exactly as check-secrets and deploy's gate
will apply it later (the frontend's DATABASE_URL form, NEXTAUTH_SECRET's length, Stripe key mode, the app's URL
guards). Only findings about the keys being written, and of the codes that judge a value, count. A key no
container references is still judged by the rules that need no service (placeholders, Stripe mode, length,
REDIS_URL). Errors, and ``bad-url`` (a URL the service's driver cannot use), refuse the write.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from arbiter_ops.secrets.analysis import Fetched, TaskDefinitionInput, analyze, references
from arbiter_ops.secrets.findings import ContainerView, Expectations, Finding, Given
from arbiter_ops.secrets.rules import (
    is_sensitive,
    rule_bad_url,
    rule_placeholder_value,
    rule_stripe_key_mode,
    rule_weak_secret,
)
from arbiter_ops.secrets.value_from import SecretRef, ValueFromError, parse_value_from

MAX_SECRET_BYTES = 65536  # Secrets Manager's limit on a SecretString
# The codes that judge a value (the others judge references and mappings: check-secrets' business).
VALUE_CODES = frozenset(
    {
        "placeholder-value",
        "stripe-key-mode",
        "weak-secret",
        "bad-url",
        "origin-mismatch",
        "app-env-mismatch",
        "mock-provider",
        "auth-secret-mismatch",
        "webhook-unsigned",
    }
)
UNREFERENCED_RULES = (rule_placeholder_value, rule_stripe_key_mode, rule_weak_secret, rule_bad_url)


def refuses(f: Finding) -> bool:
    """Whether a finding stops the write: an error, or a URL the service cannot use."""
    return f.severity == "error" or f.code == "bad-url"


def _of_secret(ref: SecretRef, secret_id: str, arn: str | None) -> bool:
    if ref.store != "secretsmanager" or ref.version_stage not in (None, "AWSCURRENT") or ref.version_id:
        return False  # a pinned version is not the one being written
    bare = ref.name[:-7] if ref.full_arn else ref.name
    return secret_id in (ref.name, bare, ref.secret_id) or (arn is not None and ref.secret_id == arn)


def _refs(inputs: Iterable[TaskDefinitionInput], secret_id: str, arn: str | None) -> Iterator[tuple[str, SecretRef]]:
    """(service, reference) for every well-formed reference to the current version of the secret."""
    for td in inputs:
        containers = td.task_definition.get("containerDefinitions")
        for container in containers if isinstance(containers, list) else []:
            for _name, value_from in references(container) if isinstance(container, Mapping) else []:
                try:
                    ref = parse_value_from(value_from)
                except ValueFromError:
                    continue
                if _of_secret(ref, secret_id, arn):
                    yield td.service, ref


def referenced_keys(
    inputs: Iterable[TaskDefinitionInput], secret_id: str, arn: str | None = None
) -> dict[str, list[str]]:
    """Key of the secret -> the services whose containers reference it (the rendered task definitions)."""
    out: dict[str, list[str]] = {}
    for service, ref in _refs(inputs, secret_id, arn):
        if ref.key and service not in out.setdefault(ref.key, []):
            out[ref.key].append(service)
    return out


def value_findings(
    inputs: list[TaskDefinitionInput],
    secret_id: str,
    arn: str | None,
    payload: Mapping[str, Any],
    keys: Iterable[str],
    expect: Expectations,
) -> list[Finding]:
    """check-secrets' value findings about ``keys`` of the secret, were it to hold ``payload``."""
    wanted = set(keys)
    text = json.dumps(dict(payload))
    fetched = {
        ref.fetch_key: Fetched("ok", payload=text, arn=arn or ref.secret_id) for _, ref in _refs(inputs, secret_id, arn)
    }
    found = [
        f
        for f in analyze(inputs, fetched, expect, unused_keys=False)
        if f.code in VALUE_CODES and f.key in wanted and f.secret is not None
    ]
    # An empty plain setting no container references can be deliberate (as in the rules' own view of `environment`).
    unreferenced = [
        key
        for key in sorted(wanted - set(referenced_keys(inputs, secret_id, arn)))
        if is_sensitive(key) or payload.get(key) != ""
    ]
    view = ContainerView("", "", None, False, (), [])
    for key in unreferenced:
        value = payload.get(key)
        ref = SecretRef("secretsmanager", secret_id, secret_id, key=key)
        view.given.append(Given(key, "secrets", value=value if isinstance(value, str) else json.dumps(value), ref=ref))
    for rule in UNREFERENCED_RULES:
        found += [replace(f, service=None, container=None) for f in rule(view, expect)]
    return found


@dataclass(frozen=True)
class Change:
    key: str
    before: int  # lengths only: a changed value is shown as "changed (length 48 → 52)" at most
    after: int


@dataclass
class Plan:
    secret_id: str
    exists: bool
    added: list[str] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # only with --replace
    kept: list[str] = field(default_factory=list)  # keys of the secret not in the input, left as they are

    @property
    def writes(self) -> bool:
        return bool(self.added or self.changed or self.removed) or not self.exists

    def updates(self, values: Mapping[str, str]) -> dict[str, str]:
        return {k: values[k] for k in [*self.added, *(c.key for c in self.changed)]}

    def as_json(self) -> dict[str, Any]:
        return {
            "exists": self.exists,
            "added": self.added,
            "changed": [{"key": c.key, "length_before": c.before, "length_after": c.after} for c in self.changed],
            "unchanged": self.unchanged,
            "removed": self.removed,
            "kept": self.kept,
        }

    def lines(self) -> list[str]:
        """The plan for a person: one line per key, never a value."""
        out = [f"  + {k}  added" for k in self.added]
        out += [f"  ~ {c.key}  changed (length {c.before} → {c.after})" for c in self.changed]
        out += [f"  - {k}  removed" for k in self.removed]
        out += [f"    {k}  unchanged" for k in self.unchanged]
        return out

    def verdict(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.changed)} changed", f"{len(self.unchanged)} unchanged"]
        if self.removed:
            parts.append(f"{len(self.removed)} removed")
        if self.kept:
            parts.append(f"{len(self.kept)} other key(s) kept")
        return ", ".join(parts)


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(json.dumps(value))


def plan_of(secret_id: str, current: Mapping[str, Any] | None, values: Mapping[str, str], replace: bool) -> Plan:
    plan = Plan(secret_id, current is not None)
    current = current or {}
    for key, value in values.items():
        if key not in current:
            plan.added.append(key)
        elif current[key] == value:
            plan.unchanged.append(key)
        else:
            plan.changed.append(Change(key, _length(current[key]), len(value)))
    others = [k for k in current if k not in values]
    if replace:
        plan.removed = others
    else:
        plan.kept = others
    return plan


def after(current: Mapping[str, Any] | None, values: Mapping[str, str], replace: bool) -> dict[str, Any]:
    """The secret's payload once the plan is applied."""
    if replace or current is None:
        return dict(values)
    return {**current, **values}


def too_large(payload: Mapping[str, Any]) -> int | None:
    size = len(json.dumps(dict(payload)).encode())
    return size if size > MAX_SECRET_BYTES else None
