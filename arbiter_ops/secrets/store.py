"""Merge keys into a Secrets Manager JSON secret without losing anyone's write.

A plain read-modify-PutSecretValue loses a concurrent writer's change (last writer wins, silently).
Here the write is a compare-and-set built from Secrets Manager's staging labels:

1. read AWSCURRENT: the payload and its VersionId (the "expected" version);
2. merge the new keys into that payload (every other key unchanged);
3. PutSecretValue the result staged ``AWSPENDING`` only (AWSCURRENT does not move yet), with a
   ClientRequestToken so botocore's own retries cannot create a second version;
4. UpdateSecretVersionStage(AWSCURRENT, MoveToVersionId=new, RemoveFromVersionId=expected): Secrets
   Manager refuses it when AWSCURRENT is no longer on the expected version, i.e. someone wrote meanwhile.
   Then re-read, re-merge and try again (tenacity, bounded in attempts and time).
5. Clean up: drop our AWSPENDING label (rotation Lambdas own that label), and make sure the version we
   replaced is AWSPREVIOUS (AWS and moto move it themselves; we check rather than assume).

A payload that is not a JSON object is refused, never overwritten and never echoed. Every payload read
goes to the redactor first.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from arbiter_ops.core.aws import call, error_code
from arbiter_ops.core.errors import ExternalError, Refused
from arbiter_ops.core.redact import REDACTOR

MAX_ATTEMPTS = 5
MAX_SECONDS = 30.0
CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"


class VersionConflict(Exception):
    """AWSCURRENT moved between our read and our stage move: another writer got there first."""


@dataclass(frozen=True)
class SecretSnapshot:
    secret_id: str
    arn: str
    version_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class MergeResult:
    secret_id: str
    version_id: str  # the new AWSCURRENT (or the unchanged one when nothing had to change)
    previous_version_id: str  # the version replaced, now AWSPREVIOUS
    attempts: int
    changed: bool
    keys: int  # keys in the stored payload


def _describe_payload(text: Any, binary: Any) -> str:
    """What the payload is, without a character of it."""
    if text is None:
        return "binary data" if binary is not None else "no string value"
    try:
        data = json.loads(text)
    except ValueError:
        return "text that is not JSON"
    return {list: "a JSON array", str: "a JSON string", type(None): "JSON null"}.get(type(data), "a JSON scalar")


def read_key(client: Any, secret_id: str, key: str) -> str | None:
    """One key of a JSON secret's AWSCURRENT, registered with the redactor; None when the payload is not a
    JSON object or has no such non-empty string. AWS errors (ClientError) are the caller's to judge."""
    text = call(client.get_secret_value, SecretId=secret_id).get("SecretString")
    REDACTOR.add_payload(text)  # first thing: nothing downstream may print it
    try:
        payload = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        payload = None  # never format the error: it quotes the payload
    value = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value:
        return None
    REDACTOR.add(value)
    return value


def read_current(client: Any, secret_id: str) -> SecretSnapshot:
    """AWSCURRENT of the secret as a JSON object (refused, exit 1, when it is anything else)."""
    from botocore.exceptions import ClientError

    try:
        resp = call(client.get_secret_value, SecretId=secret_id, VersionStage=CURRENT)
    except ClientError as exc:
        raise _read_error(secret_id, exc) from None
    text, binary = resp.get("SecretString"), resp.get("SecretBinary")
    REDACTOR.add_payload(text if text is not None else "")  # first thing: nothing may print it later
    if isinstance(binary, bytes):
        REDACTOR.add(binary.decode("utf-8", "replace"))
    data: Any = None
    if isinstance(text, str):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
    if not isinstance(data, dict):
        raise Refused(
            f"secret {secret_id} does not hold a JSON object (its AWSCURRENT version is "
            f"{_describe_payload(text, binary)}); refusing to overwrite it",
            hint="make it a JSON object of KEY: value pairs (as the guide's Step 1d does), then run again",
            code="secret-not-json",
        )
    return SecretSnapshot(secret_id, str(resp.get("ARN", secret_id)), str(resp["VersionId"]), data)


def _read_error(secret_id: str, exc: Exception) -> Exception:
    code = error_code(exc)
    if code == "ResourceNotFoundException":
        return Refused(
            f"secret {secret_id} does not exist",
            hint="create it with the guide's Step 1d keys first (arbiter-ops only merges keys into it)",
            code="secret-not-found",
        )
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", ""))[:300]
    return ExternalError(
        f"cannot read secret {secret_id}: AWS answered {code or 'an error'}: {message}",
        hint="the caller needs secretsmanager:GetSecretValue (and kms:Decrypt on its key)",
        code="aws-access-denied" if "AccessDenied" in code else "aws-error",
    )


def _sm(fn: Any, /, **kwargs: Any) -> Any:
    """One Secrets Manager call; an AWS refusal (AccessDenied, LimitExceeded...) becomes one clear line."""
    from botocore.exceptions import ClientError

    try:
        return call(fn, **kwargs)
    except ClientError as exc:
        code = error_code(exc)
        message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", ""))[:300]
        raise ExternalError(
            f"Secrets Manager refused {exc.operation_name} on {kwargs.get('SecretId')}: {code}: {message}",
            hint="the caller needs secretsmanager:DescribeSecret, PutSecretValue and UpdateSecretVersionStage on it",
            code="aws-access-denied" if "AccessDenied" in code else "aws-error",
        ) from None


def merged(snapshot: SecretSnapshot, updates: dict[str, str], remove: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The snapshot's payload with ``updates`` applied and ``remove`` dropped; key order kept, new keys appended."""
    return {k: v for k, v in {**snapshot.payload, **updates}.items() if k not in remove}


def stages(client: Any, secret_id: str) -> dict[str, list[str]]:
    """VersionId -> staging labels (versions without a label are not listed)."""
    resp = _sm(client.describe_secret, SecretId=secret_id)
    return {str(k): list(v) for k, v in (resp.get("VersionIdsToStages") or {}).items()}


def _holder(version_stages: dict[str, list[str]], label: str) -> str | None:
    return next((v for v, labels in version_stages.items() if label in labels), None)


def ensure_no_rotation(client: Any, secret_id: str) -> None:
    """Refuse to borrow AWSPENDING while a rotation Lambda is using it (we would hijack its version)."""
    resp = _sm(client.describe_secret, SecretId=secret_id)
    version_stages = {str(k): list(v) for k, v in (resp.get("VersionIdsToStages") or {}).items()}
    pending = _holder(version_stages, PENDING)
    if resp.get("RotationEnabled") and pending and CURRENT not in version_stages.get(pending, []):
        raise ExternalError(
            f"secret {secret_id} has a rotation in progress (AWSPENDING on version {pending})",
            hint="let the rotation finish and run again; if none is running, remove the stale label with "
            f"`aws secretsmanager update-secret-version-stage --secret-id {secret_id} --version-stage AWSPENDING "
            f"--remove-from-version-id {pending}`",
            code="secret-rotation-in-progress",
        )


def stage_pending(client: Any, secret_id: str, payload: dict[str, Any]) -> str:
    """Store ``payload`` as a new version labelled AWSPENDING only; return its VersionId."""
    resp = _sm(
        client.put_secret_value,
        SecretId=secret_id,
        SecretString=json.dumps(payload),
        VersionStages=[PENDING],
        ClientRequestToken=str(uuid.uuid4()),  # one per payload: a retried request is the same version
    )
    return str(resp["VersionId"])


def promote(client: Any, secret_id: str, new_version: str, expected_version: str) -> None:
    """Move AWSCURRENT to ``new_version`` only if it is still on ``expected_version`` (the CAS)."""
    from botocore.exceptions import ClientError

    try:
        call(
            client.update_secret_version_stage,
            SecretId=secret_id,
            VersionStage=CURRENT,
            MoveToVersionId=new_version,
            RemoveFromVersionId=expected_version,
        )
    except ClientError as exc:
        # Secrets Manager answers InvalidParameterException when the label is not on RemoveFromVersionId.
        # Look rather than parse its message: a conflict is "AWSCURRENT is elsewhere now".
        if CURRENT not in stages(client, secret_id).get(expected_version, []):
            raise VersionConflict(secret_id) from None
        raise ExternalError(
            f"cannot make the new version of {secret_id} current: AWS answered {error_code(exc) or 'an error'}",
            hint="the caller needs secretsmanager:UpdateSecretVersionStage on the secret",
        ) from None


def finalize(client: Any, secret_id: str, new_version: str, replaced_version: str) -> None:
    """Drop our AWSPENDING label and make sure the replaced version is AWSPREVIOUS."""
    _sm(
        client.update_secret_version_stage,
        SecretId=secret_id,
        VersionStage=PENDING,
        RemoveFromVersionId=new_version,
    )
    version_stages = stages(client, secret_id)
    if CURRENT not in version_stages.get(new_version, []):
        return  # a later writer already moved on; AWSPREVIOUS is theirs to set now
    holder = _holder(version_stages, PREVIOUS)
    if holder != replaced_version:
        kwargs: dict[str, str] = {"MoveToVersionId": replaced_version}
        if holder:
            kwargs["RemoveFromVersionId"] = holder
        _sm(client.update_secret_version_stage, SecretId=secret_id, VersionStage=PREVIOUS, **kwargs)


def _drop_pending(client: Any, secret_id: str, version: str) -> None:
    """Best effort after a lost race: an unlabelled version is deprecated and cleaned up by AWS."""
    from botocore.exceptions import BotoCoreError, ClientError

    # If this fails too, the next attempt's PutSecretValue moves the label anyway.
    with contextlib.suppress(ClientError, BotoCoreError, ExternalError):
        call(client.update_secret_version_stage, SecretId=secret_id, VersionStage=PENDING, RemoveFromVersionId=version)


def merge_keys(
    client: Any,
    secret_id: str,
    updates: dict[str, str],
    *,
    max_attempts: int = MAX_ATTEMPTS,
    max_seconds: float = MAX_SECONDS,
    on_conflict: Callable[[int], None] | None = None,
    remove: frozenset[str] = frozenset(),
) -> MergeResult:
    """Merge ``updates`` into the secret's JSON (and drop the keys in ``remove``) with a compare-and-set,
    retrying lost races."""
    from tenacity import (
        RetryError,
        Retrying,
        retry_if_exception_type,
        stop_after_attempt,
        stop_after_delay,
        wait_random_exponential,
    )

    for value in updates.values():
        REDACTOR.add(value)
    started = time.monotonic()
    retrying = Retrying(
        retry=retry_if_exception_type(VersionConflict),
        stop=stop_after_attempt(max_attempts) | stop_after_delay(max_seconds),
        wait=wait_random_exponential(multiplier=0.1, max=2.0),
        before_sleep=(lambda state: on_conflict(state.attempt_number)) if on_conflict else None,
    )
    try:
        attempt = lambda: retrying.statistics["attempt_number"]  # noqa: E731
        return retrying(_merge_once, client, secret_id, updates, attempt, remove)
    except RetryError:
        raise ExternalError(
            f"another writer kept changing secret {secret_id}; gave up after "
            f"{retrying.statistics.get('attempt_number', max_attempts)} attempts in "
            f"{time.monotonic() - started:.0f} s",
            hint="nothing was lost; run again when the other writer is done",
            code="secret-conflict",
        ) from None


def _merge_once(
    client: Any, secret_id: str, updates: dict[str, str], attempt: Callable[[], int], remove: frozenset[str]
) -> MergeResult:
    snapshot = read_current(client, secret_id)
    payload = merged(snapshot, updates, remove)
    if payload == snapshot.payload:  # nothing to change: no new version, no AWSPREVIOUS shuffle
        return MergeResult(secret_id, snapshot.version_id, snapshot.version_id, attempt(), False, len(payload))
    ensure_no_rotation(client, secret_id)
    new_version = stage_pending(client, secret_id, payload)
    try:
        promote(client, secret_id, new_version, snapshot.version_id)
    except VersionConflict:
        _drop_pending(client, secret_id, new_version)
        raise
    finalize(client, secret_id, new_version, snapshot.version_id)
    return MergeResult(secret_id, new_version, snapshot.version_id, attempt(), True, len(payload))


def read_current_or_none(client: Any, secret_id: str) -> SecretSnapshot | None:
    """Like :func:`read_current`, None when the secret does not exist (yet)."""
    try:
        return read_current(client, secret_id)
    except Refused as exc:
        if exc.code == "secret-not-found":
            return None
        raise


def create_json_secret(client: Any, secret_id: str, payload: dict[str, Any]) -> str | None:
    """Create the secret holding ``payload``; its VersionId, or None when someone created it meanwhile (then
    merge into theirs). The ClientRequestToken makes a retried request the same version."""
    from botocore.exceptions import ClientError

    try:
        resp = call(
            client.create_secret,
            Name=secret_id,
            SecretString=json.dumps(payload),
            ClientRequestToken=str(uuid.uuid4()),
        )
    except ClientError as exc:
        code = error_code(exc)
        if code == "ResourceExistsException":
            return None
        message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", ""))[:300]
        hint = (
            f"restore it first (aws secretsmanager restore-secret --secret-id {secret_id})"
            if "deletion" in message
            else "the caller needs secretsmanager:CreateSecret on it"
        )
        raise ExternalError(
            f"cannot create secret {secret_id}: AWS answered {code or 'an error'}: {message}",
            hint=hint,
            code="aws-access-denied" if "AccessDenied" in code else "aws-error",
        ) from None
    return str(resp["VersionId"])
