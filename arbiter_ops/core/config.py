"""The `arbiter-ops.toml` model. Built-in defaults reproduce the AWS deployment guide, so no file is needed.

A user file is deep-merged over the defaults (``[services.backend] cpu = 1024`` changes only that key),
then validated strictly: an unknown key, a wrong type or a bad value is a :class:`ConfigError` (exit 2)
naming the file, the key and what was expected.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from arbiter_ops.core.defaults import builtin_defaults
from arbiter_ops.core.errors import ConfigError

DEFAULT_CONFIG_NAME = "arbiter-ops.toml"


def _account_id(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"\d{12}", value):
        raise ValueError("expected a 12-digit AWS account id")
    return value


# Fargate task sizes: cpu units -> allowed memory (MiB).
def _steps(low: int, high: int, step: int) -> tuple[int, ...]:
    return tuple(range(low, high + 1, step))


FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: _steps(1024, 4096, 1024),
    1024: _steps(2048, 8192, 1024),
    2048: _steps(4096, 16384, 1024),
    4096: _steps(8192, 30720, 1024),
    8192: _steps(16384, 61440, 4096),
    16384: _steps(32768, 122880, 8192),
}

def fargate_memory_options(cpu: Any) -> str:
    try:
        allowed = FARGATE_SIZES[int(cpu)]
    except (TypeError, ValueError, KeyError):
        return f"nothing: cpu must be one of {', '.join(map(str, FARGATE_SIZES))}"
    if len(allowed) <= 4:
        return ", ".join(map(str, allowed))
    return f"{allowed[0]}-{allowed[-1]} in steps of {allowed[1] - allowed[0]}"


def fargate_size_ok(cpu: Any, memory: Any) -> bool:
    try:
        return int(memory) in FARGATE_SIZES.get(int(cpu), ())
    except (TypeError, ValueError):
        return False


def _http_url(value: str | None) -> str | None:
    """A URL-valued setting must be an http(s)://host URL (a base URL, an API or endpoint address)."""
    if value is None:
        return value
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise ValueError("expected an http(s)://host URL")
    return value


class Strict(BaseModel):
    # No NaN or infinity anywhere: a timeout of `nan` never ends and one of `inf` never times out.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class StripeConfig(Strict):
    api_base: str = "https://api.stripe.com"
    webhook_path: str = "/api/v1/billing/webhooks/stripe"
    webhook_events: list[str] = Field(
        default_factory=lambda: [
            "checkout.session.completed",
            "customer.subscription.updated",
            "customer.subscription.deleted",
        ]
    )

    _url = field_validator("api_base")(classmethod(lambda cls, v: _http_url(v)))


class EnvironmentConfig(Strict):
    app_mode: Literal["mock", "sandbox", "production"]
    app_env: Literal["development", "staging", "production"]
    cluster: str = "arbiter-ai"
    secret: str | None = None  # default: "<project>/<env name>"
    base_url: str | None = None  # local: the sandbox's Arbiter API stand-in
    domain: str | None = None  # default: the top-level domain
    region: str | None = None
    account_id: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None

    _account = field_validator("account_id")(classmethod(lambda cls, v: _account_id(v)))
    _urls = field_validator("base_url", "endpoint_url")(classmethod(lambda cls, v: _http_url(v)))


class ServiceConfig(Strict):
    family: str
    container: str
    ecs_service: str
    ecr_repository: str
    template: str
    cpu: int
    memory: int
    port: int | None = Field(default=None, ge=1, le=65535)  # None: no port, no ALB, no health check (worker, beat)
    health_check_path: str | None = None
    # The container health check runs inside the image, with what the image has: the real backend is
    # python:3.12-slim and the frontend node:20-alpine, neither with curl (gndumbri/arbiter-ai backend/Dockerfile,
    # frontend/Dockerfile; their own infra/ecs task definitions probe with Python's urllib and Node's fetch).
    health_check_command: str = (
        "python -c \"import urllib.request; urllib.request.urlopen('http://localhost:{port}{path}')\" || exit 1"
    )
    desired_count: int = Field(ge=0)
    context: str
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str] = Field(default_factory=dict)
    platform: str = "linux/amd64"
    log_group: str | None = None  # default: "/ecs/<family>"
    # Plain variables of the container (values may use {app_mode}, {app_env}, {region}, {base_url}, {domain}).
    environment: dict[str, str] = Field(default_factory=dict)
    # Secret variables: variable name -> JSON key of the environment's secret.
    secrets: dict[str, str] = Field(default_factory=dict)
    # Variables the service must receive (check-secrets `required-missing`).
    required: list[str] = Field(default_factory=list)
    # The container's command (the real app's worker and beat: `celery -A app.workers.celery_app worker|beat`,
    # gndumbri/arbiter-ai infra/terraform/ecs.tf); None: the image's CMD.
    command: list[str] | None = None
    # The service whose image this one runs (`push` builds it once); its settings are this one's defaults.
    image_of: str | None = None
    # At most one task at a time (a scheduler: two beats run every job twice): deployed with maximumPercent 100
    # and minimumHealthyPercent 0, and the smoke test's `beat-singleton` fails when more than one runs.
    singleton: bool = False

    @model_validator(mode="after")
    def _fargate_size(self) -> ServiceConfig:
        # Checked here, before any AWS call: a wrong size is bad input, whatever else fails later.
        if self.port is not None and not self.health_check_path:
            raise ValueError("a service with a port needs health_check_path (the ALB's and the container's check)")
        if not fargate_size_ok(self.cpu, self.memory):
            raise ValueError(
                f"cpu {self.cpu} / memory {self.memory} is not a Fargate task size "
                f"(cpu {self.cpu} allows memory {fargate_memory_options(self.cpu)})"
            )
        return self


class SmokeConfig(Strict):
    # The real backend's routes (gndumbri/arbiter-ai backend/app/api/routes/: health, catalog, users, sessions,
    # judge). A query is two calls: a session for `game_name`, then the judge's ruling on `query`.
    health_path: str = "/health"
    catalog_path: str = "/api/v1/catalog/"
    sign_in_path: str = "/api/v1/users/me"
    sessions_path: str = "/api/v1/sessions"
    judge_path: str = "/api/v1/judge"
    # Not validated here: the backend validates them (1-200 and 1-500 characters) and its 422 says what is wrong.
    game_name: str = "Catan (6th Ed)"  # as the app's catalog seed names it
    query: str = "How many resource cards can a player hold when a 7 is rolled?"
    identity_sub: str = "arbiter-ops-smoke-test"
    identity_email: str = "smoke-test@arbiter-ai.com"
    identity_name: str = "arbiter-ops smoke test"
    timeout: float = Field(default=10.0, gt=0)
    retries: int = Field(default=2, ge=0)
    follow_redirects: bool = False
    # Deadline of a check that talks to AWS (and Stripe): botocore's own retries finish well within it.
    aws_timeout: float = Field(default=60.0, gt=0)


class MigrateConfig(Strict):
    # Columns that must be of type vector once `alembic upgrade head` exits 0: the real app's pgvector revision
    # once caught its own error and made rule_chunks.embedding text (queries then answer 500).
    expect_vector_columns: list[str] = Field(default_factory=lambda: ["rule_chunks.embedding"])


class Config(Strict):
    project: str = "arbiter-ai"
    region: str = "us-east-1"
    account_id: str | None = None
    domain: str = "arbiter-ai.com"
    execution_role: str = "ecsTaskExecutionRole"
    task_role: str = "arbiter-ai-task-role"
    rds_instance: str = "arbiter-db"
    redis_cluster: str = "arbiter-redis"
    state_table: str = "arbiter-ops-state"
    stripe: StripeConfig = Field(default_factory=StripeConfig)
    smoke: SmokeConfig = Field(default_factory=SmokeConfig)
    migrate: MigrateConfig = Field(default_factory=MigrateConfig)
    environments: dict[str, EnvironmentConfig]
    services: dict[str, ServiceConfig]
    source: str = "built-in defaults"

    _account = field_validator("account_id")(classmethod(lambda cls, v: _account_id(v)))

    def environment(self, name: str) -> EnvironmentConfig:
        if name not in self.environments:
            raise ConfigError(
                f"unknown environment {name!r}",
                hint=f"expected one of: {', '.join(self.environments)} (or define [environments.{name}] "
                f"in {DEFAULT_CONFIG_NAME})",
                code="unknown-environment",
            )
        return self.environments[name]

    def service(self, name: str) -> ServiceConfig:
        if name not in self.services:
            raise ConfigError(
                f"unknown service {name!r}",
                hint=f"expected one of: {', '.join(self.services)}",
                code="unknown-service",
            )
        return self.services[name]

    def secret_id(self, env_name: str) -> str:
        return self.environment(env_name).secret or f"{self.project}/{env_name}"

    def domain_of(self, env_name: str) -> str:
        return self.environment(env_name).domain or self.domain


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in _REPLACED_TABLES:
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# Tables a user replaces whole rather than merges: a mapping they write is the mapping they want.
_REPLACED_TABLES = {"environment", "secrets", "build_args"}


def _describe_error(err: dict[str, Any], data: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        parent_model = _model_at(err["loc"][:-1])
        expected = ", ".join(parent_model.model_fields) if parent_model else "a known key"
        return f"{loc}: unknown key (expected one of: {expected})"
    if err["type"] == "missing":
        return f"{loc}: required key is missing"
    given = err.get("input")
    shown = f" (got {given!r})" if isinstance(given, (int, float, str, bool)) and len(str(given)) < 60 else ""
    if err["type"] == "value_error":  # our own validators' words, as written
        return f"{loc}: {str(err['msg']).removeprefix('Value error, ')}{shown if not isinstance(given, dict) else ''}"
    return f"{loc}: {err['msg'].lower()}{shown}"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    i = 0
    while i < len(loc):
        part = loc[i]
        if model is Config and part in ("environments", "services"):
            model = EnvironmentConfig if part == "environments" else ServiceConfig
            i += 2  # skip the name
            continue
        field = model.model_fields.get(str(part))
        ann = field.annotation if field else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
            i += 1
            continue
        return None
    return model


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the config: an explicit path (must exist), else ./arbiter-ops.toml if present, else defaults."""
    data: dict[str, Any] = {}
    source = "built-in defaults"
    chosen = Path(path) if path else Path(DEFAULT_CONFIG_NAME)
    if path and chosen.is_dir():
        example = chosen / DEFAULT_CONFIG_NAME
        raise ConfigError(f"config file {chosen} is a directory", hint=f"name the file, e.g. {example}")
    if path and not chosen.is_file():
        raise ConfigError(f"config file {chosen} not found", hint="check --config / ARBITER_OPS_CONFIG")
    if chosen.is_file():
        source = str(chosen)
        try:
            data = tomllib.loads(chosen.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{chosen}: TOML syntax error: {exc}", hint="fix the file's syntax") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{chosen}: not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x})",
                hint="save the file as UTF-8",
            ) from None
        except OSError as exc:
            raise ConfigError(f"{chosen}: cannot read: {exc.strerror}") from None
    merged = _with_images_of(_merge(builtin_defaults(), data), source)
    # New environments get the defaults every environment shares.
    try:
        config = Config.model_validate({**merged, "source": source})
    except ValidationError as exc:
        problems = [_describe_error(e, merged) for e in exc.errors()]
        raise ConfigError(
            f"{source}: {'; '.join(problems)}", hint="see the configuration reference in README.md"
        ) from None
    return _apply_env_overrides(config)


# What a service sharing another's image does not inherit from it: its names, and the ALB-facing settings.
_NOT_INHERITED = ("family", "container", "ecs_service", "port", "health_check_path", "health_check_command",
                  "log_group", "desired_count", "image_of", "singleton", "command")  # fmt: skip


def _with_images_of(merged: dict[str, Any], source: str) -> dict[str, Any]:
    """A service with ``image_of = "backend"`` (the real app's worker and beat) starts from the backend's settings
    (image, template, size, environment, secrets, required variables) with its own names: family
    ``<backend's family prefix>-<name>``, container and ECS service ``<name>``, no port, one task."""
    services = merged.get("services") or {}
    for name, svc in services.items():
        base_name = svc.get("image_of") if isinstance(svc, dict) else None
        if base_name is None:
            continue
        base = services.get(base_name)
        if not isinstance(base, dict) or base.get("image_of"):
            raise ConfigError(
                f"{source}: services.{name}.image_of: {base_name!r} is not a service with its own image",
                hint=f"expected one of: {', '.join(n for n, s in services.items() if not s.get('image_of'))}",
            )
        inherited = {k: copy.deepcopy(v) for k, v in base.items() if k not in _NOT_INHERITED}
        prefix = str(base.get("family", "arbiter")).rsplit("-", 1)[0]
        defaults = {"family": f"{prefix}-{name}", "container": name, "ecs_service": name, "desired_count": 1}
        defaults["singleton"] = name == "beat"
        services[name] = {**inherited, **defaults, **svc}
    return merged


def _apply_env_overrides(config: Config) -> Config:
    if os.environ.get("ARBITER_OPS_STRIPE_API_BASE"):
        value = os.environ["ARBITER_OPS_STRIPE_API_BASE"]
        try:
            config.stripe.api_base = value
        except ValidationError:
            raise ConfigError(
                f"ARBITER_OPS_STRIPE_API_BASE={value[:80]!r} is not an http(s)://host URL", code="bad-url"
            ) from None
    return config
