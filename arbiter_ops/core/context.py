"""The one object every command receives: config, environment, output, and lazily built clients."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from arbiter_ops.core.errors import ExternalError, UsageError

if TYPE_CHECKING:
    from arbiter_ops.core.aws import AwsClients
    from arbiter_ops.core.config import Config, EnvironmentConfig
    from arbiter_ops.core.output import Output


class LocalWorld(Protocol):
    """What the context needs of a local sandbox: where its parts answer, and how to let it go."""

    aws_endpoint_url: str
    stripe_api_base: str
    app_base_url: str
    pid: int
    problems: list[str]

    def as_dict(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


@dataclass
class Options:
    """The global options of one run (the contract's table), as the command line and environment give them."""

    config_path: str | None = None
    env: str = "local"
    output: str = "text"
    region: str | None = None
    profile: str | None = None
    yes: bool = False
    verbose: int = 0
    quiet: bool = False

    @classmethod
    def from_environment(cls, env: str | None = None, output: str | None = None, verbose: int = 0) -> Options:
        """For a command line that could not be parsed: what it said, else the variables, else the defaults."""
        return cls(
            env=env or os.environ.get("ARBITER_OPS_ENV") or "local",
            output=output or os.environ.get("ARBITER_OPS_OUTPUT") or "text",
            verbose=verbose,
        )


@dataclass
class Context:
    options: Options
    config: Config
    output: Output
    command: str = "arbiter-ops"
    # How `--env local` finds or starts its sandbox (arbiter_ops.local.ensure_local): handed in by whoever builds
    # the context, so that nothing in core/ knows the sandbox.
    find_local: Callable[[Context], LocalWorld] | None = field(default=None, repr=False)
    _aws: AwsClients | None = field(default=None, repr=False)
    _account_id: str | None = field(default=None, repr=False)
    _local: LocalWorld | None = field(default=None, repr=False)

    # -- environment -----------------------------------------------------------------------
    @property
    def env_name(self) -> str:
        return self.options.env

    @property
    def env(self) -> EnvironmentConfig:
        return self.config.environment(self.options.env)

    @property
    def is_local(self) -> bool:
        return self.options.env == "local"

    @property
    def is_production(self) -> bool:
        return self.options.env == "production" or self.env.app_env == "production"

    @property
    def region(self) -> str:
        """--region, else AWS_REGION (not for `local`: the sandbox is seeded in the configured region, and a
        shell's AWS_REGION must not move it), else the config's; a malformed name is bad input (exit 2)."""
        if self.options.region:
            return checked_region(self.options.region, "--region")
        if not self.is_local and os.environ.get("AWS_REGION"):
            return checked_region(os.environ["AWS_REGION"], "AWS_REGION")
        if self.env.region:
            return checked_region(self.env.region, f"[environments.{self.env_name}] region")
        return checked_region(self.config.region, "region in the config")

    @property
    def secret_id(self) -> str:
        return self.config.secret_id(self.options.env)

    @property
    def domain(self) -> str:
        return self.config.domain_of(self.options.env)

    def base_url(self) -> str:
        """Where the environment's app answers (smoke tests, webhook URL)."""
        if os.environ.get("ARBITER_OPS_BASE_URL"):
            value = os.environ["ARBITER_OPS_BASE_URL"]
            parts = urllib.parse.urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise UsageError(f"ARBITER_OPS_BASE_URL={value[:80]!r} is not an http(s)://host URL", code="bad-url")
            return value.rstrip("/")
        if self.is_local:
            return self.local().app_base_url
        if self.env.base_url:
            return self.env.base_url.rstrip("/")
        return f"https://{self.domain}"

    def render_base_url(self) -> str:
        """The public URL baked into task definitions (NEXTAUTH_URL); static, unlike the sandbox's port."""
        return (self.env.base_url or f"https://{self.domain}").rstrip("/")

    def stripe_api_base(self) -> str:
        if os.environ.get("ARBITER_OPS_STRIPE_API_BASE"):
            return os.environ["ARBITER_OPS_STRIPE_API_BASE"]
        if self.is_local:
            return self.local().stripe_api_base
        return self.config.stripe.api_base

    # -- the local sandbox -----------------------------------------------------------------
    def local(self) -> LocalWorld:
        """The running local sandbox (persistent, or embedded for this command's duration)."""
        if self._local is None:
            if self.find_local is None:
                raise ExternalError("this run has no local sandbox", hint="name a real environment with --env")
            self._local = self.find_local(self)
        return self._local

    def close(self) -> None:
        """Let go of what the run holds: an embedded sandbox it started stops (a persistent one stays)."""
        if self._local is not None:
            self._local.close()

    # -- AWS -------------------------------------------------------------------------------
    @property
    def aws(self) -> AwsClients:
        if self._aws is None:
            from arbiter_ops.core.aws import AwsClients

            if self.is_local:
                # Nothing real is touched: sandbox endpoint, dummy credentials, whatever the shell has.
                self._aws = AwsClients(
                    self.region,
                    endpoint_url=self.local().aws_endpoint_url,
                    credentials=("testing", "testing"),
                )
            else:
                self._aws = AwsClients(
                    self.region,
                    profile=self.options.profile or self.env.profile,
                    endpoint_url=self.env.endpoint_url,
                )
        return self._aws

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    def account_id(self) -> str:
        """Config `account_id` (environment, then top level), else AWS_ACCOUNT_ID, else STS."""
        if self._account_id is None:
            self._account_id = (
                self.env.account_id
                or self.config.account_id
                or os.environ.get("AWS_ACCOUNT_ID")
                or self.aws.account_id()
            )
        return self._account_id

    def api_calls(self) -> dict[str, Any] | None:
        return self._aws.counter.as_dict() if self._aws is not None else None

    # -- interaction -----------------------------------------------------------------------
    def confirm_production(self, action: str) -> None:
        """Changing production needs --yes, or a 'yes' typed at a terminal."""
        if not self.is_production or self.options.yes:
            return
        if not sys.stdin.isatty():
            raise UsageError(
                f"refusing to {action} in {self.env_name} without confirmation",
                hint="pass --yes (or set ARBITER_OPS_YES=1) in non-interactive runs",
                code="confirmation-required",
            )
        import typer

        if not typer.confirm(f"{action} in {self.env_name}?", default=False, err=True):
            raise UsageError("aborted by the user", code="aborted")


# us-east-1, eu-central-2, us-gov-west-1, cn-north-1, us-iso-east-1, ap-southeast-5 ...
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+){1,3}-\d{1,2}")


def checked_region(value: str, source: str) -> str:
    if not _REGION.fullmatch(value):
        raise UsageError(
            f"{source} {value[:60]!r} is not an AWS region name", hint="e.g. us-east-1", code="bad-region"
        )
    return value


def git_short_sha(cwd: str | None = None) -> str:
    """The default image tag: the short SHA of HEAD."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        raise UsageError(
            "no --image-tag given and the git commit cannot be read", hint="pass --image-tag TAG"
        ) from None
    sha = out.stdout.strip()
    if not sha:
        raise ExternalError("git printed no commit SHA", hint="pass --image-tag TAG")
    return sha
