"""What `--help` teaches beyond each option's own line: a command's summary (its first sentence, whole), its exit
codes and one example (the epilog), and arguments shown by their plain word (``SERVICE...``).

:func:`teach` applies it to the click command Typer built, so a command function in cli.py stays one short
function and a new command gets its summary for free (its exit codes and example are added here). The exit
codes are the contract's (`../shared/CONTRACT.md`), said for each command; only typer/click are imported.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from typing import Any

WIDTH = 76  # click's help is at most 80 columns, and indents an epilog by 2
_BAD_INPUT = "bad input: usage error, invalid config, unknown service or environment"
_AWS = "AWS unreachable or refusing after retries, no credentials"

# command path -> (exit codes, one example); every command that --help lists has an entry (a test checks).
EPILOGS: dict[str, tuple[tuple[tuple[int, str], ...], str]] = {
    "arbiter-ops": (
        (
            (0, "success: everything checked passed / the operation completed"),
            (1, 'the tool worked and the answer is "no": a check, smoke test or migration failed, a deploy was '
             "rolled back"),
            (2, "bad input: usage error, invalid config, template error, unknown service or environment"),
            (3, "environment or external failure: no credentials, AWS/Stripe/Docker unreachable, a timeout, "
             "a lock held"),
            (4, "a deploy failed and its rollback failed: a human must look now"),
        ),
        "arbiter-ops --env production deploy --image-tag 3f9c2e1 --yes",
    ),
    "render": (
        (
            (0, "the task definition is valid and was printed (or written to --out)"),
            (2, "unknown service, template error, invalid task definition, --out not writable"),
            (3, f"{_AWS} (the live image tag, --diff)"),
        ),
        "arbiter-ops render backend --env staging --image-tag 3f9c2e1 --out td.json",
    ),
    "check-secrets": (
        (
            (0, "no finding is an error (warnings and info may be listed)"),
            (1, "a finding is an error: ECS would fail the task at start, or the app would refuse to"),
            (2, f"{_BAD_INPUT}, a --task-def file that cannot be read"),
            (3, _AWS),
        ),
        "arbiter-ops check-secrets --env production --output json",
    ),
    "push": (
        (
            (0, "every image is in ECR under the tag (pushed now or already there)"),
            (1, "refused (uncommitted changes, production without --yes, --force on an IMMUTABLE repository) or "
             "the build failed"),
            (2, f"{_BAD_INPUT}, a malformed tag"),
            (3, f"{_AWS}, Docker or the registry unreachable"),
        ),
        'arbiter-ops push --env staging --tag "$(git rev-parse --short HEAD)"',
    ),
    "promote": (
        (
            (0, "every image has the new tag (or already had it)"),
            (1, "the source tag is not in ECR, or the new tag already names another image"),
            (2, f"{_BAD_INPUT}, a malformed or identical tag"),
            (3, _AWS),
        ),
        "arbiter-ops promote --env production --from-tag 3f9c2e1 --to-tag v1.4.0",
    ),
    "migrate": (
        (
            (0, "the migration task exited 0 (--preflight: every check passed)"),
            (1, "the migration exited non-zero or did not start, check-secrets or the preflight failed, the image "
             "is not in ECR"),
            (2, f"{_BAD_INPUT}, a bad --command"),
            (3, f"{_AWS}, the task did not stop within --timeout, the database cannot be reached (--preflight)"),
        ),
        "arbiter-ops migrate --env staging --image-tag 3f9c2e1",
    ),
    "stripe-webhook": (
        (
            (0, "exactly one endpoint with the required events, its secret stored (--dry-run: nothing to do)"),
            (
                1,
                "a Stripe key of the wrong mode, other endpoints on the URL without --prune, --check failed, an "
                "unfinished rotation (run --rotate), the backend's restart during --rotate failed",
            ),
            (2, _BAD_INPUT),
            (3, f"{_AWS}, Stripe unreachable or answering 401, the restart not stable within --timeout"),
        ),
        "arbiter-ops stripe-webhook --env staging --rotate",
    ),
    "smoke-test": (
        (
            (0, "no check failed (warnings and skips allowed)"),
            (1, "a check failed"),
            (2, f"{_BAD_INPUT}, an unknown check id, no check selected"),
            (3, "AWS or the app cannot be reached at all (a check that could not run did not fail)"),
        ),
        "arbiter-ops smoke-test --env staging --only http-health --only dns",
    ),
    "deploy": (
        (
            (0, "every service runs the new revision and passed the smoke test"),
            (1, "a gate failed before any change (check-secrets, images, migration), the rollout or smoke test "
             "failed and every service was rolled back, or someone else's deployment superseded ours"),
            (2, f"{_BAD_INPUT}, a template error, a malformed tag"),
            (3, f"{_AWS}, another deploy holds the lock (after --lock-wait)"),
            (4, "the rollout failed and so did the rollback: a human must look now"),
        ),
        "arbiter-ops deploy --env production --image-tag 3f9c2e1 --yes",
    ),
    "rollback": (
        (
            (0, "the service is stable on the earlier revision"),
            (1, "no earlier (active) revision to return to, or the rollback did not settle"),
            (2, f"{_BAD_INPUT}, a bad --to-revision"),
            (3, f"{_AWS}, another run holds the lock"),
        ),
        "arbiter-ops rollback backend --env production --yes",
    ),
    "run": (
        (
            (0, "the command exited 0"),
            (1, "the command exited non-zero, or its task did not start"),
            (2, f"{_BAD_INPUT}, no command after --"),
            (3, f"{_AWS}, the task did not stop within --timeout (it is stopped)"),
        ),
        "arbiter-ops run backend --env staging -- python -m scripts.seed_catalog",
    ),
    "status": (
        (
            (0, "the environment was read (the table says whether it is healthy)"),
            (2, _BAD_INPUT),
            (3, _AWS),
        ),
        "arbiter-ops status --env production",
    ),
    "bootstrap": (
        (
            (0, "everything exists (created now or before), the ECR lifecycle policy and the IAM policies printed"),
            (1, "production without --yes"),
            (2, _BAD_INPUT),
            (3, _AWS),
        ),
        "arbiter-ops bootstrap --env staging",
    ),
    "logs": (
        (
            (0, "the lines were printed (none in the window is not an error)"),
            (1, "the service's task definition sends no logs to CloudWatch, or its log group does not exist"),
            (2, f"{_BAD_INPUT}, a bad --since (30s, 15m, 2h, 1d) or --task"),
            (3, f"{_AWS}, CloudWatch Logs throttling without end"),
            (130, "--follow ended by Ctrl-C (143 SIGTERM, 129 SIGHUP), as every interrupted command"),
        ),
        "arbiter-ops logs backend --env production --since 1h --filter ERROR --follow",
    ),
    "history": (
        ((0, "the records were listed (none yet is not an error)"), (2, _BAD_INPUT), (3, _AWS)),
        "arbiter-ops history backend --env production --limit 10",
    ),
    "prune": (
        (
            (0, "every old revision is deregistered (or, --dry-run, listed); the kept ones say why"),
            (1, "production without --yes"),
            (2, f"{_BAD_INPUT}, --keep missing or below 1"),
            (3, f"{_AWS} (throttling is waited out)"),
        ),
        "arbiter-ops prune --env production --keep 5 --dry-run",
    ),
    "unlock": (
        (
            (0, "the lock is cleared (or there was none)"),
            (2, f"{_BAD_INPUT}, no --force"),
            (3, _AWS),
        ),
        "arbiter-ops unlock --env production --force",
    ),
    "secrets": (
        ((0, "done"), (1, "refused: a value breaks a rule, or the environments differ"), (2, "usage error")),
        "arbiter-ops secrets import backend/.env --env staging --dry-run",
    ),
    "secrets import": (
        (
            (0, "imported (or nothing to change); --dry-run: the plan"),
            (1, "refused before any write: a value breaks a check-secrets rule (named by key, never shown)"),
            (2, f"{_BAD_INPUT}, a file that is missing or not dotenv"),
            (3, _AWS),
        ),
        "arbiter-ops secrets import backend/.env --env staging --dry-run",
    ),
    "secrets set": (
        (
            (0, "set (or unchanged)"),
            (1, "refused: the value breaks a check-secrets rule"),
            (2, f"{_BAD_INPUT}, no value (or more than one line) on stdin"),
            (3, _AWS),
        ),
        "arbiter-ops secrets set STRIPE_WEBHOOK_SECRET --env staging < whsec.txt",
    ),
    "secrets diff": (
        (
            (0, "the key sets agree where they must"),
            (1, "a referenced key is missing in one, or a kind differs where it must not"),
            (2, _BAD_INPUT),
            (3, _AWS),
        ),
        "arbiter-ops secrets diff staging production",
    ),
    "local": (
        ((0, "done"), (1, "`local status`: none is running"), (2, "usage error"), (3, "it did not start or stop")),
        "arbiter-ops local up --output json",
    ),
    "local up": (
        ((0, "the sandbox answers (started now or already running)"), (3, "it did not start in time")),
        "arbiter-ops local up --output json",
    ),
    "local status": (
        ((0, "a persistent sandbox is running, described"), (1, "none is running")),
        "arbiter-ops local status --output json",
    ),
    "local down": (
        ((0, "stopped (or none was running)"), (3, "a process it started did not stop")),
        "arbiter-ops local down",
    ),
}


def epilog(path: str) -> str | None:
    """The epilog of a command (``"deploy"``, ``"local up"``): its exit codes and one example, kept as lines."""
    if path not in EPILOGS:
        return None
    codes, example = EPILOGS[path]
    lines = ["\b", "Exit codes:"]
    for code, meaning in codes:  # wrapped here, with a hanging indent: click keeps a \b paragraph's lines
        lines += textwrap.wrap(meaning, WIDTH, initial_indent=f"  {code}  ", subsequent_indent="     ")
    return "\n".join([*lines, "", "\b", "Example:", f"  {example}"])


def first_sentence(text: str | None) -> str:
    """A docstring's first sentence, whole (click would cut it near 45 characters)."""
    paragraph = " ".join(inspect.cleandoc(text or "").split("\n\n", 1)[0].split())
    end = re.search(r"[.!?](?=\s)", paragraph)
    return paragraph[: end.end()] if end else paragraph


def teach(command: Any, path: str = "arbiter-ops") -> Any:
    """Give ``command`` and every sub-command its summary, epilog and plain argument names; returns it."""
    if command.help and not command.short_help:
        command.short_help = first_sentence(command.help)
    command.epilog = command.epilog or epilog(path)
    for param in command.params:
        if param.param_type_name == "argument" and param.metavar:
            _plain_argument(param)
    for name, sub in (getattr(command, "commands", None) or {}).items():
        teach(sub, name if path == "arbiter-ops" else f"{path} {name}")
    return command


def _plain_argument(param: Any) -> None:
    """Show an argument as ``SERVICE...`` in its help line, not ``SERVICE <list[str]>`` (Typer adds the type)."""
    word = param.metavar + ("..." if param.nargs != 1 else "")
    record = param.get_help_record

    def get_help_record(ctx: Any) -> tuple[str, str] | None:
        found = record(ctx)
        return None if found is None else (word, found[1])

    param.get_help_record = get_help_record
