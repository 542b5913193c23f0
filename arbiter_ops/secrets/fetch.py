"""Reading what a `valueFrom` points at: the one GetSecretValue by reference, and SSM parameters' existence.

Every value is registered with the redactor the moment it arrives, so nothing downstream can print it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arbiter_ops.core.aws import call, error_code
from arbiter_ops.core.errors import ExternalError
from arbiter_ops.core.redact import REDACTOR
from arbiter_ops.secrets.analysis import Fetched, json_object
from arbiter_ops.secrets.value_from import SecretRef

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

SSM_BATCH = 10  # GetParameters takes at most 10 names
_ACCESS_HINT = (
    "the caller needs secretsmanager:GetSecretValue on the secret and kms:Decrypt on its KMS key "
    "(`arbiter-ops bootstrap` prints the policy)"
)


def get_secret_value(client: Any, ref: SecretRef) -> dict[str, Any]:
    """GetSecretValue of the secret a reference names (its stage or version, if it pins one), the payload
    registered with the redactor first. AWS errors (ClientError) are the caller's to judge."""
    kwargs: dict[str, Any] = {"SecretId": ref.secret_id}  # moto (and clarity) want no ":KEY::" suffix
    if ref.version_stage:
        kwargs["VersionStage"] = ref.version_stage
    if ref.version_id:
        kwargs["VersionId"] = ref.version_id
    resp: dict[str, Any] = call(client.get_secret_value, **kwargs)
    REDACTOR.add_payload(resp.get("SecretString"))  # first thing: nothing downstream may ever print it
    binary = resp.get("SecretBinary")
    if isinstance(binary, bytes):
        REDACTOR.add_payload(binary.decode("utf-8", "replace"))
    return resp


def fetch_references(ctx: Context, refs: list[SecretRef]) -> dict[tuple[str, str, str | None, str | None], Fetched]:
    out = {ref.fetch_key: _get_secret(ctx, ref) for ref in refs if ref.store == "secretsmanager"}
    names = sorted({ref.secret_id for ref in refs if ref.store == "ssm"})
    found: set[str] = set()
    for i in range(0, len(names), SSM_BATCH):
        found |= _existing_parameters(ctx, names[i : i + SSM_BATCH])
    for ref in refs:
        if ref.store == "ssm":
            out[ref.fetch_key] = Fetched("ok" if ref.secret_id in found else "not-found")
    return out


def _get_secret(ctx: Context, ref: SecretRef) -> Fetched:
    from botocore.exceptions import ClientError

    try:
        resp = get_secret_value(ctx.client("secretsmanager"), ref)
    except ClientError as exc:
        return _secret_error(ref, exc)
    text = resp.get("SecretString")
    keys = _key_count(text)
    ctx.output.detail(f"read secret {ref.describe()}: {keys}")
    return Fetched("ok", payload=text if isinstance(text, str) else None, arn=resp.get("ARN"))


def _key_count(text: Any) -> str:
    obj = json_object(text if isinstance(text, str) else None)
    return f"{len(obj)} keys" if obj is not None else "not a JSON object"


def _secret_error(ref: SecretRef, exc: Exception) -> Fetched:
    code = error_code(exc)
    aws_message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", ""))[:300]
    if code == "ResourceNotFoundException":
        detail = "or it has no version in that stage" if ref.version_stage or ref.version_id else None
        return Fetched("not-found", detail=detail)
    if code == "InvalidRequestException":  # GetSecretValue says so for a secret scheduled for deletion
        return Fetched("not-found", detail="it is scheduled for deletion")
    if code in ("InvalidParameterException", "ValidationException"):
        return Fetched("invalid", detail=aws_message or code)
    hint = "the caller needs kms:Decrypt on the secret's KMS key" if code == "DecryptionFailure" else _ACCESS_HINT
    raise ExternalError(
        f"cannot read secret {ref.describe()}: AWS answered {code or 'an error'}: {aws_message}",
        hint=hint,
        code="aws-access-denied" if "AccessDenied" in code else "aws-error",
    ) from None


def _existing_parameters(ctx: Context, names: list[str]) -> set[str]:
    from botocore.exceptions import ClientError

    try:
        resp = call(ctx.client("ssm").get_parameters, Names=names, WithDecryption=False)
    except ClientError as exc:
        raise ExternalError(
            f"cannot check SSM parameters {', '.join(names)}: AWS answered {error_code(exc) or 'an error'}",
            hint="the caller needs ssm:GetParameters on them",
        ) from None
    found = set()
    for param in resp.get("Parameters", []):
        REDACTOR.add(param.get("Value"))  # existence is all we need; the value must not travel further
        found.add(str(param.get("Name")))
    ctx.output.detail(f"SSM: {len(found)} of {len(names)} parameters exist")
    return found
