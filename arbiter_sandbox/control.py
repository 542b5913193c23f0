"""A small client for a sandbox server's ``/_sandbox/`` control routes, for tests that drive a CLI subprocess.

Standard library only (no moto, no boto3), so a test or a helper script can steer a sandbox running in
another process:

    control = SandboxControl("http://127.0.0.1:PORT")
    control.add_fault(kind="throttle", operation="ecs:DescribeServices", count=2)
    control.fail_next_deployment("backend")
    control.reset()

Fault rules and reset work against every sandbox server (AWS, Stripe, Arbiter API); the ECS calls only
against the AWS sandbox.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from typing import Any


class SandboxControlError(RuntimeError):
    """A control route refused the call (bad rule, unknown route) or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SandboxControl:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    # -- every sandbox server -------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._call("GET", "/_sandbox/health")

    def add_fault(self, **rule: Any) -> dict[str, Any]:
        """Add a fault rule (fields as in ``faults.parse_rule``: kind, operation, count, probability, seed...)."""
        return self._call("POST", "/_sandbox/faults", rule)

    def faults(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/_sandbox/faults")["rules"])

    def clear_faults(self) -> None:
        self._call("DELETE", "/_sandbox/faults")

    def reset(self) -> dict[str, Any]:
        return self._call("POST", "/_sandbox/reset")

    # -- the AWS sandbox's ECS overlay -------------------------------------------------------------
    def task_outcome(
        self,
        command_contains: str | None = None,
        exit_code: int = 0,
        log_lines: list[str] | None = None,
        fail_to_start: str | None = None,
        never_stops: bool = False,
        secret_change: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """How the next RunTask whose command contains ``command_contains`` (any, if None) ends; with
        ``secret_change`` ({"secret_id", "secret_string"}) that secret is rewritten just before it starts."""
        return self._call(
            "POST",
            "/_sandbox/ecs/task-outcome",
            {
                "command_contains": command_contains,
                "exit_code": exit_code,
                "log_lines": log_lines,
                "fail_to_start": fail_to_start,
                "never_stops": never_stops,
                "secret_change": secret_change,
            },
        )

    def fail_next_deployment(
        self,
        service: str,
        count: int = 1,
        reason: str | None = None,
        kind: str = "start",
        exit_code: int = 1,
        log_lines: list[str] | None = None,
        secret_change: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The next ``count`` deployments of ``service`` (a rollback that starts tasks counts) meet ``kind``:
        start (fail to start with ``reason``), crash (``exit_code``, ``log_lines``), unhealthy, stall, supersede,
        edit-secret (``secret_change`` lands before ECS resolves the tasks' secrets)."""
        body = {"service": service, "count": count, "reason": reason, "kind": kind, "exit_code": exit_code}
        extra = {"log_lines": log_lines, "secret_change": secret_change}
        return self._call("POST", "/_sandbox/ecs/fail-deployment", {**body, **extra})

    def set_progress(self, mode: str, step_seconds: float | None = None) -> dict[str, Any]:
        """ "per-call" (one step per poll), "instant", or "timed" (one step per ``step_seconds``)."""
        body: dict[str, Any] = {"mode": mode}
        if step_seconds is not None:
            body["step_seconds"] = step_seconds
        return self._call("POST", "/_sandbox/ecs/progress", body)

    def ecs_state(self) -> dict[str, Any]:
        return self._call("GET", "/_sandbox/ecs/state")

    # -- transport ----------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            with contextlib.suppress(ValueError, AttributeError):  # not our JSON error: keep the raw text
                detail = str(json.loads(detail).get("error", detail))
            raise SandboxControlError(f"{method} {path}: {exc.code} {detail}", exc.code) from exc
        except urllib.error.URLError as exc:
            raise SandboxControlError(f"{method} {path}: {exc.reason}") from exc
        answer = json.loads(raw or b"{}")
        if not isinstance(answer, dict):
            raise SandboxControlError(f"{method} {path}: expected a JSON object, got {raw[:200]!r}")
        return answer
