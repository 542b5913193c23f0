"""AWS access in one place: lazily built botocore clients, one retry policy, and an API-call counter.

botocore is imported here only, and only when a client is first needed (`arbiter-ops --help` stays fast). The
clients are botocore's own, created from a botocore session: boto3's layer on top adds resources and S3 transfers,
which no command uses, and its import (s3transfer, multiprocessing) cost about a tenth of every AWS command's SDK start.
The counter hooks botocore's events: ``before-call`` fires once per logical API call, ``before-send``
once per HTTP attempt, so retries are visible without inflating the logical count.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

from arbiter_ops.core.errors import CredentialsError, ExternalError, UsageError

if TYPE_CHECKING:
    import botocore.session

# Generous and bounded: standard mode retries throttling and 5xx with jittered backoff. AWS_MAX_ATTEMPTS and
# AWS_RETRY_MODE, the SDKs' own variables, are honoured (botocore would otherwise let this file's values win over
# them): e.g. legacy mode takes its timing from botocore's `_retry` data, which AWS_DATA_PATH can replace.
RETRY_MAX_ATTEMPTS = 8
RETRY_MODES = ("standard", "adaptive", "legacy")
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30


class ApiCallCounter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def on_call(self, model: Any = None, **_: Any) -> None:
        name = f"{model.service_model.service_name}:{model.name}" if model is not None else "?"
        with self._lock:
            self.calls[name] += 1

    def on_send(self, request: Any = None, **kwargs: Any) -> None:
        event_name = kwargs.get("event_name", "")
        with self._lock:
            self.attempts[event_name.removeprefix("before-send.")] += 1

    def total(self) -> int:
        return sum(self.calls.values())

    def count(self, operation: str) -> int:
        """Calls of ``Operation`` or ``service:Operation``."""
        if ":" in operation:
            return self.calls.get(operation, 0)
        return sum(n for k, n in self.calls.items() if k.split(":", 1)[1] == operation)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total(),
            "attempts": sum(self.attempts.values()),
            "by_operation": dict(sorted(self.calls.items())),
        }


_LOADERS: dict[str | None, Any] = {}
_LOADERS_LOCK = threading.Lock()


def shared_loader(data_path: str | None = None) -> Any:
    """One botocore data loader per process (per AWS_DATA_PATH): every session and client reads each service
    model and endpoint ruleset from disk once, and lists botocore's ~400 data directories once."""
    with _LOADERS_LOCK:
        if data_path not in _LOADERS:
            from botocore.loaders import create_loader

            _LOADERS[data_path] = create_loader(data_path)
        return _LOADERS[data_path]


def service_model(service: str) -> Any:
    """A service's botocore model from the shared loader (e.g. for botocore's own validator)."""
    from botocore.model import ServiceModel

    data = shared_loader(os.environ.get("AWS_DATA_PATH")).load_service_model(service, "service-2")
    return ServiceModel(data, service_name=service)


class AwsClients:
    """The SDK clients of one command run. Region, profile and endpoint come from the context."""

    def __init__(
        self,
        region: str,
        profile: str | None = None,
        endpoint_url: str | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.region = region
        self.profile = profile
        self.endpoint_url = endpoint_url
        self.credentials = credentials
        self.counter = ApiCallCounter()
        self._session: botocore.session.Session | None = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def session(self) -> botocore.session.Session:
        if self._session is None:
            import botocore.session
            from botocore.exceptions import ProfileNotFound

            core = botocore.session.Session(profile=None if self.credentials else self.profile)
            try:
                core.register_component("data_loader", shared_loader(core.get_config_variable("data_path")))
                if self.credentials:
                    core.set_credentials(*self.credentials)
                if self.region:
                    core.set_config_variable("region", self.region)
                # A profile named but absent: botocore says so when the profile's settings are first read.
                core.get_scoped_config()
            except ProfileNotFound:
                raise ExternalError(
                    f"AWS profile {self.profile!r} not found",
                    hint="check --profile / AWS_PROFILE against ~/.aws/config",
                    code="unknown-profile",
                ) from None
            core.register("before-call.*.*", self.counter.on_call)
            core.register("before-send.*.*", self.counter.on_send)
            self._session = core
        return self._session

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                from botocore.config import Config

                config = Config(
                    retries={"mode": retry_mode(), "max_attempts": max_attempts()},
                    connect_timeout=CONNECT_TIMEOUT,
                    read_timeout=READ_TIMEOUT,
                    user_agent_extra="arbiter-ops",
                )
                kwargs: dict[str, Any] = {"config": config, "region_name": self.region}
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                try:
                    self._clients[service] = self.session().create_client(service, **kwargs)
                except ValueError as exc:  # botocore: "Invalid endpoint: ..." (AWS_ENDPOINT_URL, endpoint_url)
                    if "endpoint" not in str(exc).lower():
                        raise
                    raise UsageError(
                        f"the AWS endpoint URL is not a URL ({str(exc)[:120]})",
                        hint="check AWS_ENDPOINT_URL (or endpoint_url in the config): http(s)://host[:port]",
                        code="bad-endpoint-url",
                    ) from None
            return self._clients[service]

    def account_id(self) -> str:
        return str(call(self.client("sts").get_caller_identity)["Account"])


def max_attempts() -> int:
    raw = os.environ.get("AWS_MAX_ATTEMPTS", "")
    if not raw:
        return RETRY_MAX_ATTEMPTS
    if not raw.isdigit() or int(raw) < 1:
        raise UsageError(f"AWS_MAX_ATTEMPTS={raw[:20]!r} is not a positive whole number", code="bad-max-attempts")
    return int(raw)


def retry_mode() -> str:
    raw = os.environ.get("AWS_RETRY_MODE", "").strip().lower()
    if not raw:
        return "standard"
    if raw not in RETRY_MODES:
        raise UsageError(f"AWS_RETRY_MODE={raw[:20]!r} is not one of {', '.join(RETRY_MODES)}", code="bad-retry-mode")
    return raw


def check_sdk_environment() -> None:
    """The SDK variables we honour, checked before any client (ours, or an embedded sandbox's) reads them."""
    max_attempts()
    retry_mode()


def arn_name(arn: str) -> str:
    """What follows the last '/' of an ARN (or of an image reference): ``family:revision`` of a task definition,
    a task's id, a certificate's id, a hosted zone's id, ``repository:tag`` of an image."""
    return arn.rsplit("/", 1)[-1]


def call(fn: Any, /, **kwargs: Any) -> Any:
    """Call an SDK method, turning the failures a user can meet into typed errors (exit 3).

    ClientErrors are re-raised as they are: the caller decides what a NotFound means.
    """
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    try:
        return fn(**kwargs)
    except ClientError as exc:
        code = error_code(exc)
        if code in ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"):
            raise CredentialsError(
                f"AWS rejected the credentials ({code})", hint="refresh them (aws sso login / aws configure)"
            ) from None
        if code in _THROTTLED or _status(exc) >= 500:
            raise ExternalError(
                f"AWS kept failing after {max_attempts()} attempts ({code} on {exc.operation_name})",
                hint="try again later; check the AWS Health Dashboard",
            ) from None
        raise
    except (NoCredentialsError, PartialCredentialsError):
        raise CredentialsError(
            "no AWS credentials found",
            hint="set AWS_PROFILE / AWS_ACCESS_KEY_ID, or run `aws configure`; `--env local` needs none",
        ) from None
    except NoRegionError:
        raise ExternalError("no AWS region configured", hint="pass --region or set AWS_REGION") from None
    except EndpointConnectionError as exc:
        raise ExternalError(f"cannot reach AWS at {exc.kwargs.get('endpoint_url')}", hint="check the network") from None
    except BotoCoreError as exc:
        raise ExternalError(f"AWS request failed: {exc}") from None


_THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}


def is_client_error(exc: BaseException) -> bool:
    """Whether ``exc`` is AWS's answer refusing a request (botocore's ClientError), without importing botocore."""
    return any(cls.__name__ == "ClientError" and cls.__module__ == "botocore.exceptions" for cls in type(exc).__mro__)


def refusal(exc: BaseException) -> str:
    """AWS's refusal in its own words: ``ServiceNotActiveException on UpdateService: Service was not ACTIVE.``"""
    response = getattr(exc, "response", None) or {}
    message = str(response.get("Error", {}).get("Message", "")).strip()
    said = f"{error_code(exc) or type(exc).__name__} on {getattr(exc, 'operation_name', '?')}"
    return f"{said}: {message}" if message else said


def aws_refused(exc: BaseException) -> ExternalError:
    """A ClientError no step had a better word for, as the external failure it is (exit 3)."""
    return ExternalError(
        f"AWS refused the request ({refusal(exc)})",
        hint="check the role's permissions and the resource (`arbiter-ops status`)",
        code="aws-refused",
    )


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _status(exc: Exception) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
