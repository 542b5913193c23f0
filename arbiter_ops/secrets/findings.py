"""The shape of a `check-secrets` finding, the contract's codes and severities, and the views the rules judge:
what the environment expects, and what each container is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Literal

from arbiter_ops.secrets.value_from import SecretRef

Severity = Literal["error", "warning", "info"]
SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}

# The contract's codes and their severity (required-missing depends on the environment).
SEVERITY: dict[str, Severity] = {
    "missing-key": "error",
    "secret-not-found": "error",
    "secret-not-json": "error",
    "bad-value-from": "error",
    "arn-mismatch": "error",
    "required-missing": "error",
    "plaintext-secret": "error",
    "duplicate-name": "error",
    "placeholder-value": "error",
    "stripe-key-mode": "error",
    "weak-secret": "error",
    "auth-secret-mismatch": "error",
    "app-env-mismatch": "error",
    "origin-mismatch": "error",
    "bad-url": "warning",
    "unused-key": "info",
    "mock-provider": "error",
    "webhook-unsigned": "warning",
}

@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    service: str | None
    container: str | None
    name: str | None
    secret: str | None
    key: str | None
    message: str
    fix: str  # for humans (text, annotations, step summary); not part of the contract's JSON

    def as_json(self) -> dict[str, str | None]:
        """The contract's fields, exactly."""
        data = asdict(self)
        data.pop("fix")
        return data


@dataclass(frozen=True)
class ServiceRules:
    container: str  # the service's main container: required variables are checked there
    required: tuple[str, ...] = ()


@dataclass(frozen=True)
class Expectations:
    """What the environment expects; built by the command from the config and the AWS context."""

    env_name: str
    production: bool
    region: str
    account_id: str
    app_env: str
    app_mode: str
    domain: str
    services: Mapping[str, ServiceRules] = field(default_factory=dict)

    def severity(self, code: str) -> Severity:
        if code == "required-missing" and not self.production:
            return "warning"  # the guide's mode table: production crashes on missing, sandbox warns
        if code == "mock-provider" and not self.production:
            return "info"
        return SEVERITY[code]


@dataclass(frozen=True)
class Given:
    """One variable a container receives, from ``environment`` or ``secrets``."""

    name: str
    source: Literal["environment", "secrets"]
    value: str | None = None  # None: not known (reference broken, SSM parameter, binary secret)
    ref: SecretRef | None = None


@dataclass
class ContainerView:
    service: str
    container: str
    role: str | None  # "backend" / "frontend": the rules the contract ties to those services
    main: bool
    required: tuple[str, ...]
    given: list[Given]
    present: bool = True  # False: the service's configured container is not in its task definition at all


def role_of(service: str) -> str | None:
    return service if service in ("backend", "frontend") else None


def finding(
    expect: Expectations,
    code: str,
    view: ContainerView | None,
    given: Given | None,
    message: str,
    fix: str,
    *,
    name: str | None = None,
) -> Finding:
    ref = given.ref if given else None
    return Finding(
        code=code,
        severity=expect.severity(code),
        service=view.service if view else None,
        container=view.container if view else None,
        name=given.name if given else name,
        secret=ref.secret_id if ref else None,
        key=ref.key if ref else None,
        message=message,
        fix=fix,
    )
