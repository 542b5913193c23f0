"""Typed errors, each mapped to an exit code of the contract.

0 success, 1 "the answer is no", 2 bad input, 3 environment / external failure, 4 deploy and rollback failed.
Every error carries one line saying what is wrong and, where we know it, what to do (``hint``).
"""

from __future__ import annotations


class OpsError(Exception):
    """Base of every error a user can cause or meet; never shown with a traceback."""

    exit_code = 3
    code = "error"

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code

    def line(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class UsageError(OpsError):
    exit_code = 2
    code = "usage"


class ConfigError(OpsError):
    exit_code = 2
    code = "config"


class TemplateError(OpsError):
    exit_code = 2
    code = "template"


class TaskDefinitionInvalid(OpsError):
    exit_code = 2
    code = "invalid-task-definition"


class Refused(OpsError):
    """The tool worked and the answer is no (a check failed, an image is missing, ...)."""

    exit_code = 1
    code = "refused"


class ExternalError(OpsError):
    """AWS, Stripe, Docker or the network failed or refused after retries."""

    exit_code = 3
    code = "external"


class CredentialsError(ExternalError):
    code = "no-credentials"


class OpsTimeout(ExternalError):
    code = "timeout"


class LockHeld(ExternalError):
    code = "locked"


class RollbackFailed(OpsError):
    exit_code = 4
    code = "rollback-failed"


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM (CI cancelling a job, `timeout`, Kubernetes) or SIGHUP (a closed terminal): unwinds like
    Ctrl-C, so every ``finally`` releases what the run holds. Exit 128 + the signal's number (130, 143, 129)."""

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal_name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def interruption(exc: BaseException) -> tuple[str, int]:
    """(what interrupted the run, its exit code) of a KeyboardInterrupt, ours or Python's own."""
    if isinstance(exc, Interrupted):
        return f"interrupted by {exc.signal_name}", exc.exit_code
    return "interrupted", 130
