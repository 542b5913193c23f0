"""`check-secrets` analysis: a pure function from (task definitions, fetched payloads, expectations)
to findings. No AWS, no I/O: :mod:`arbiter_ops.commands.check_secrets` fetches, this module judges.

Reference-level codes live here (bad-value-from, arn-mismatch, secret-not-found, secret-not-json,
missing-key, unused-key); what a container is given is judged in :mod:`arbiter_ops.secrets.rules`, whose
docstring lists the precedence rules. A JSON decoding error is never formatted anywhere: its message and
``.doc`` carry the payload.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from arbiter_ops.secrets.app_guards import APP_RULES
from arbiter_ops.secrets.findings import (
    SEVERITY_RANK,
    ContainerView,
    Expectations,
    Finding,
    Given,
    ServiceRules,
    finding,
    role_of,
)
from arbiter_ops.secrets.rules import CONTAINER_RULES, usable, where
from arbiter_ops.secrets.value_from import SecretRef, ValueFromError, parse_value_from

__all__ = [
    "Expectations",
    "Fetched",
    "Finding",
    "ServiceRules",
    "TaskDefinitionInput",
    "analyze",
    "json_object",
    "references_to_fetch",
    "summarize",
]

FetchKey = tuple[str, str, str | None, str | None]


@dataclass(frozen=True)
class TaskDefinitionInput:
    service: str
    task_definition: Mapping[str, Any]


@dataclass(frozen=True)
class Fetched:
    """The outcome of reading one distinct secret (or SSM parameter)."""

    status: Literal["ok", "not-found", "invalid"]
    payload: str | None = None  # SecretString; None for a binary secret or an SSM parameter
    arn: str | None = None  # the secret's full ARN, as AWS answered: groups partial ARNs and names
    detail: str | None = None  # why not found / invalid, from AWS's error (never a value)


def _containers(td: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    containers = td.get("containerDefinitions")
    return [c for c in containers if isinstance(c, Mapping)] if isinstance(containers, list) else []


def _entries(container: Mapping[str, Any], field: str) -> list[Mapping[str, Any]]:
    items = container.get(field)
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


def references(container: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Every (name, valueFrom) ECS resolves when a task of this container starts: its ``secrets``, its log
    driver's ``logConfiguration.secretOptions``, and the private registry's
    ``repositoryCredentials.credentialsParameter``."""
    out = []
    for entry in _entries(container, "secrets"):
        out.append((entry.get("name") if isinstance(entry.get("name"), str) else "(unnamed)", entry.get("valueFrom")))
    log = container.get("logConfiguration")
    for entry in _entries(log, "secretOptions") if isinstance(log, Mapping) else []:
        name = entry.get("name") if isinstance(entry.get("name"), str) else "(unnamed)"
        out.append((f"logConfiguration.secretOptions {name}", entry.get("valueFrom")))
    credentials = container.get("repositoryCredentials")
    if isinstance(credentials, Mapping) and "credentialsParameter" in credentials:
        out.append(("repositoryCredentials.credentialsParameter", credentials.get("credentialsParameter")))
    return out


def _mismatch(ref: SecretRef, expect: Expectations) -> str | None:
    problems = []
    if ref.region and ref.region != expect.region:
        problems.append(f"region {ref.region} (the environment's is {expect.region})")
    if ref.account and ref.account != expect.account_id:
        problems.append(f"account {ref.account} (the environment's is {expect.account_id})")
    return " and ".join(problems) or None


def references_to_fetch(task_definitions: Iterable[TaskDefinitionInput], expect: Expectations) -> list[SecretRef]:
    """The distinct secrets and parameters worth reading: well-formed and in the environment's region/account."""
    seen: dict[FetchKey, SecretRef] = {}
    for td in task_definitions:
        for container in _containers(td.task_definition):
            for _name, value_from in references(container):
                try:
                    ref = parse_value_from(value_from)
                except ValueFromError:
                    continue
                if _mismatch(ref, expect) is None:
                    seen.setdefault(ref.fetch_key, ref)
    return list(seen.values())


def json_object(payload: str | None) -> dict[str, Any] | None:
    if payload is None:
        return None
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):  # deliberately unformatted: the error quotes the payload
        return None
    return data if isinstance(data, dict) else None


def _as_text(value: Any) -> str:
    """What ECS puts in the variable for a JSON value."""
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value)


class _Resolver:
    """Turns each `secrets` entry into a :class:`Given`, adding the reference-level finding if any."""

    def __init__(self, fetched: Mapping[FetchKey, Fetched], expect: Expectations) -> None:
        self.fetched = fetched
        self.expect = expect
        self._objects: dict[FetchKey, dict[str, Any] | None] = {}
        self.findings: list[Finding] = []

    def object_of(self, key: FetchKey) -> dict[str, Any] | None:
        if key not in self._objects:
            got = self.fetched.get(key)
            self._objects[key] = json_object(got.payload if got else None)
        return self._objects[key]

    def resolve(self, view: ContainerView, name: str, value_from: Any) -> Given:
        expect = self.expect
        try:
            ref = parse_value_from(value_from)
        except ValueFromError as exc:
            given = Given(name, "secrets")
            self._add(
                expect,
                "bad-value-from",
                view,
                given,
                f"{name}: {exc}",
                "use arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME:KEY:: (or an SSM parameter ARN / name)",
            )
            return given
        given = Given(name, "secrets", ref=ref)
        mismatch = _mismatch(ref, expect)
        if mismatch:
            self._add(
                expect,
                "arn-mismatch",
                view,
                given,
                f"{name} points at {ref.name} in {mismatch}",
                f"reference the {expect.env_name} secret in {expect.region} / account {expect.account_id}",
            )
            return given
        got = self.fetched.get(ref.fetch_key)
        if got is None:  # not read (cannot happen through the command): judge nothing
            return given
        if got.status == "invalid":
            self._add(
                expect,
                "bad-value-from",
                view,
                given,
                f"{name}: AWS rejects the reference to {ref.describe()} ({got.detail or 'invalid'})",
                "use arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME:KEY:: (or an SSM parameter ARN / name)",
            )
            return given
        if got.status == "not-found":
            return self._not_found(view, given, ref, got)
        if ref.store == "ssm":
            return given  # existence only: parameter values are not judged
        if ref.key is None:
            return Given(name, "secrets", value=got.payload, ref=ref)
        obj = self.object_of(ref.fetch_key)
        if obj is None:
            kind = "binary" if got.payload is None else "not a JSON object"
            self._add(
                expect,
                "secret-not-json",
                view,
                given,
                f"{name} selects key {ref.key}, but secret {ref.describe()} is {kind}",
                f"store a JSON object in {ref.name}, or reference the whole secret (drop ':{ref.key}::')",
            )
            return given
        if ref.key not in obj:
            self._add(
                expect,
                "missing-key",
                view,
                given,
                f"{name} selects key {ref.key}, which secret {ref.describe()} lacks (ECS fails the task at start)",
                f"add {ref.key} to {ref.name} (aws secretsmanager put-secret-value) or fix the valueFrom",
            )
            return given
        return Given(name, "secrets", value=_as_text(obj[ref.key]), ref=ref)

    def _not_found(self, view: ContainerView, given: Given, ref: SecretRef, got: Fetched) -> Given:
        expect = self.expect
        if ref.store == "ssm":
            message = f"{given.name}: SSM parameter {ref.name} does not exist in {expect.region}"
            fix = (
                f"create it (aws ssm put-parameter --name {ref.name} --type SecureString), or, for a Secrets "
                "Manager secret, use its ARN"
            )
        else:
            why = f" ({got.detail})" if got.detail else ""
            message = f"{given.name}: secret {ref.describe()} does not exist in {expect.region}{why}"
            fix = f"create {ref.name} (aws secretsmanager create-secret --name {ref.name}) or fix the valueFrom"
        self._add(expect, "secret-not-found", view, given, message, fix)
        return given

    def _add(self, expect: Expectations, code: str, view: ContainerView, given: Given, message: str, fix: str) -> None:
        self.findings.append(finding(expect, code, view, given, message, fix))


def _views(td: TaskDefinitionInput, resolver: _Resolver, expect: Expectations) -> list[ContainerView]:
    containers = _containers(td.task_definition)
    rules = expect.services.get(td.service, ServiceRules(container=""))
    names = [str(c.get("name") or f"#{i}") for i, c in enumerate(containers)]
    # The configured service's own container is the one that must get its required variables; when it is not
    # there, none is (each required variable is then missing: ECS would start a task without it).
    main = rules.container if rules.container in names else (None if rules.container else (names or [None])[0])
    views = []
    for cname, container in zip(names, containers, strict=True):
        view = ContainerView(td.service, cname, role_of(td.service), cname == main, rules.required, [])
        for entry in _entries(container, "environment"):
            if isinstance(entry.get("name"), str):
                value = entry.get("value")
                view.given.append(Given(entry["name"], "environment", value="" if value is None else str(value)))
        for name, value_from in references(container):
            view.given.append(resolver.resolve(view, name, value_from))
        views.append(view)
    if rules.container and main is None and rules.required:  # the configured container is absent
        views.append(ContainerView(td.service, rules.container, role_of(td.service), True, rules.required, [], False))
    return views


def rule_auth_secret_mismatch(views: list[ContainerView], expect: Expectations) -> list[Finding]:
    """Cross-service: the frontend's AUTH_SECRET must equal the backend's NEXTAUTH_SECRET (one JWT key)."""
    backend = [g for v in views if v.role == "backend" for g in usable(v) if g.name == "NEXTAUTH_SECRET"]
    if not backend:
        return []
    out = []
    for view in views:
        if view.role != "frontend":
            continue
        for given in usable(view):
            if given.name != "AUTH_SECRET":
                continue
            mine = (given.value or "").encode()
            if all(hmac.compare_digest(mine, (b.value or "").encode()) for b in backend):
                continue
            out.append(
                finding(
                    expect,
                    "auth-secret-mismatch",
                    view,
                    given,
                    f"{where(given)} differs from the backend's NEXTAUTH_SECRET: sign-in tokens will be rejected",
                    "map AUTH_SECRET to the same secret key as the backend's NEXTAUTH_SECRET",
                )
            )
    return out


def rule_unused_key(views: Sequence[ContainerView], resolver: _Resolver, expect: Expectations) -> list[Finding]:
    """Keys of a referenced secret that no container uses (the guide: don't map PINECONE_API_KEY)."""
    used: dict[str, set[str]] = {}
    whole: set[str] = set()
    source: dict[str, SecretRef] = {}
    for view in views:
        for given in view.given:
            ref = given.ref
            got = resolver.fetched.get(ref.fetch_key) if ref and ref.store == "secretsmanager" else None
            if ref is None or got is None or got.status != "ok":
                continue
            canonical = got.arn or ref.secret_id  # a name, a partial and a full ARN of one secret: one group
            if ref.key is None:
                whole.add(canonical)  # the whole string is passed on: every key is used
            used.setdefault(canonical, set()).update([ref.key] if ref.key else [])
            # Judge the current version (a reference without stage/version) when there is one.
            if canonical not in source or (ref.version_stage is None and ref.version_id is None):
                source[canonical] = ref
    out = []
    for canonical, ref in sorted(source.items()):
        obj = resolver.object_of(ref.fetch_key)
        if canonical in whole or obj is None:
            continue
        for key in sorted(set(obj) - used[canonical]):
            out.append(
                Finding(
                    code="unused-key",
                    severity=expect.severity("unused-key"),
                    service=None,
                    container=None,
                    name=None,
                    secret=ref.secret_id,
                    key=key,
                    message=f"key {key} of secret {ref.name} is not used by any container",
                    fix=f"remove {key} from {ref.name} if nothing else reads it",
                )
            )
    return out


def _sort_key(f: Finding) -> tuple[Any, ...]:
    return (
        SEVERITY_RANK[f.severity],
        f.service is None,
        f.service or "",
        f.container or "",
        f.code,
        f.name or "",
        f.secret or "",
        f.key or "",
    )


def analyze(
    task_definitions: Sequence[TaskDefinitionInput],
    fetched: Mapping[FetchKey, Fetched],
    expect: Expectations,
    *,
    report_services: Iterable[str] | None = None,
    unused_keys: bool = True,
) -> list[Finding]:
    """All findings, errors first. ``report_services`` limits the report to some services while the
    others still count as context (the backend's NEXTAUTH_SECRET, keys used elsewhere)."""
    resolver = _Resolver(fetched, expect)
    views = [view for td in task_definitions for view in _views(td, resolver, expect)]
    findings = list(resolver.findings)
    for view in views:
        for rule in (*CONTAINER_RULES, *APP_RULES):
            findings += rule(view, expect)
    findings += rule_auth_secret_mismatch(views, expect)
    if unused_keys:
        findings += rule_unused_key(views, resolver, expect)
    wanted = set(report_services) if report_services is not None else None
    unique: dict[tuple[Any, ...], Finding] = {}
    for f in findings:
        if wanted is None or f.service is None or f.service in wanted:
            unique.setdefault((f.code, f.service, f.container, f.name, f.secret, f.key), f)
    return sorted(unique.values(), key=_sort_key)


def summarize(findings: Iterable[Finding]) -> dict[str, int]:
    counts = {"error": 0, "warning": 0, "info": 0}
    for f in findings:
        counts[f.severity] += 1
    return counts
