"""Reading a container secret's `valueFrom` the way ECS reads it. Pure: no AWS, no I/O.

ECS accepts, in ``containerDefinitions[].secrets[].valueFrom``:

- a Secrets Manager ARN, full (``...:secret:NAME-AbCdEf``) or partial (``...:secret:NAME``), either alone
  (the whole secret string) or followed by ``:JSON-KEY:VERSION-STAGE:VERSION-ID``, each part possibly
  empty (``ARN:KEY::``, ``ARN:KEY:AWSPREVIOUS:``, ``ARN:KEY::VERSION-ID``, ``ARN::AWSPREVIOUS:``);
- an SSM Parameter Store ARN (``arn:aws:ssm:REGION:ACCOUNT:parameter/NAME``) or, in the task's own
  region, a bare parameter name (``NAME`` or ``/path/NAME``). ECS reads *anything that is not an ARN* as
  an SSM parameter name: a Secrets Manager secret is only reachable by its ARN.

Error reasons never quote the valueFrom: people paste secret values into the wrong field, and a finding
must not print one. The container and variable name are enough to find the line.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

Store = Literal["secretsmanager", "ssm"]

_PARTITION = r"aws(?:-[a-z]+)*"
_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}"
_SM_ARN = re.compile(
    rf"arn:(?P<partition>{_PARTITION}):secretsmanager:(?P<region>{_REGION}):(?P<account>\d{{12}}):secret:(?P<rest>.*)"
)
_SSM_ARN = re.compile(
    rf"arn:(?P<partition>{_PARTITION}):ssm:(?P<region>{_REGION}):(?P<account>\d{{12}}):parameter/(?P<name>.*)"
)
# Secrets Manager secret names: 1-512 of letters, digits and /_+=.@- (no ':', which is what makes
# the ARN suffix parseable at all).
_SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
_SSM_NAME = re.compile(r"/?[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*")
_SERVICE = re.compile(r"[a-z0-9-]{1,30}")
# A full ARN ends with "-" and six random characters that Secrets Manager appends to the name.
_RANDOM_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")
SECRET_FIELDS_HINT = (
    "ECS expects ...:secret:NAME or ...:secret:NAME:JSON-KEY:VERSION-STAGE:VERSION-ID (e.g. NAME:KEY::)"
)


# What a secret value (rather than a reference to one) starts with: Stripe keys and signing secrets, Slack,
# GitHub and GitLab tokens, AWS access key ids, JWTs.
SECRET_VALUE_PREFIXES = ("sk_", "rk_", "pk_live_", "whsec_", "xox", "ghp_", "gho_", "github_pat_", "glpat-", "AKIA",
                         "ASIA", "eyJ")  # fmt: skip


def looks_like_secret_value(text: str) -> bool:
    """A pasted value, not a name: a known secret prefix, or a long random-looking string: upper and lower case
    letters and digits, no '/' hierarchy, high entropy, and the case or kind of character changing often (a
    CamelCase name such as ArbiterProdDatabasePassword2024 changes seldom)."""
    if text.startswith(SECRET_VALUE_PREFIXES):
        return True
    if len(text) < 20 or "/" in text or not all(re.search(p, text) for p in ("[a-z]", "[A-Z]", "[0-9]")):
        return False
    counts = [text.count(c) for c in set(text)]
    entropy = -sum(n / len(text) * math.log2(n / len(text)) for n in counts)
    kinds = ["u" if c.isupper() else "l" if c.islower() else "d" if c.isdigit() else "o" for c in text]
    changes = sum(a != b for a, b in itertools.pairwise(kinds)) / (len(text) - 1)
    return entropy >= 3.5 and changes >= 0.45  # random base62: about 0.6


class ValueFromError(ValueError):
    """A malformed valueFrom; the message says what is wrong without quoting the value."""


@dataclass(frozen=True)
class SecretRef:
    """Where one variable's value comes from."""

    store: Store
    secret_id: str  # what to fetch: the ARN without ":KEY:STAGE:VERSION", or the SSM parameter name
    name: str  # for humans: the secret name as written in the ARN, or the parameter name
    key: str | None = None  # JSON key inside the secret; None = the whole secret string
    version_stage: str | None = None
    version_id: str | None = None
    region: str | None = None  # None: a bare SSM name, resolved in the task's own region
    account: str | None = None

    @property
    def fetch_key(self) -> tuple[str, str, str | None, str | None]:
        """One fetch per distinct (store, secret, stage, version), whatever the number of keys."""
        return (self.store, self.secret_id, self.version_stage, self.version_id)

    @property
    def full_arn(self) -> bool:
        """Probably a full ARN (with the random suffix). A name may end like one too: only a hint."""
        return self.store == "secretsmanager" and bool(_RANDOM_SUFFIX.search(self.name))

    def describe(self) -> str:
        """``NAME`` plus the version it pins, for messages."""
        where = self.name
        if self.version_stage:
            where += f" (stage {self.version_stage})"
        if self.version_id:
            where += f" (version {self.version_id})"
        return where


def parse_value_from(value: object) -> SecretRef:
    """Parse one valueFrom; raise :class:`ValueFromError` when ECS could not resolve it."""
    if not isinstance(value, str) or not value.strip():
        raise ValueFromError("valueFrom is missing or empty")
    if value != value.strip():
        raise ValueFromError("valueFrom has leading or trailing whitespace")
    if value.startswith("arn:"):
        return _parse_arn(value)
    return _parse_ssm_name(value)


def _parse_arn(value: str) -> SecretRef:
    parts = value.split(":", 5)
    service = parts[2] if len(parts) > 2 else ""
    if service == "secretsmanager":
        return _parse_secretsmanager_arn(value)
    if service == "ssm":
        return _parse_ssm_arn(value)
    shown = f"of {service!r}" if _SERVICE.fullmatch(service) else "of another service"
    raise ValueFromError(f"valueFrom is an ARN {shown}, not of a Secrets Manager secret or an SSM parameter")


def _parse_secretsmanager_arn(value: str) -> SecretRef:
    m = _SM_ARN.fullmatch(value)
    if m is None:
        raise ValueFromError(
            "valueFrom is not a well-formed Secrets Manager ARN "
            "(expected arn:aws:secretsmanager:REGION:12-DIGIT-ACCOUNT:secret:NAME...)"
        )
    fields = m["rest"].split(":")
    if len(fields) not in (1, 4):
        # "ARN:KEY" without the trailing "::" is the classic mistake: ECS rejects it at task start.
        raise ValueFromError(
            f"valueFrom has {len(fields) - 1} ':'-separated field(s) after the secret name; {SECRET_FIELDS_HINT}"
        )
    name = fields[0]
    if not _SECRET_NAME.fullmatch(name):
        raise ValueFromError("the secret name in valueFrom is empty or has characters Secrets Manager does not allow")
    key, stage, version = [*fields[1:], "", "", ""][:3]
    if version and not 32 <= len(version) <= 64:
        raise ValueFromError("the version id in valueFrom is not 32-64 characters long (a VersionId is a UUID)")
    if stage and len(stage) > 256:
        raise ValueFromError("the version stage in valueFrom is longer than 256 characters")
    prefix = value[: len(value) - len(m["rest"])]
    return SecretRef(
        store="secretsmanager",
        secret_id=prefix + name,
        name=name,
        key=key or None,
        version_stage=stage or None,
        version_id=version or None,
        region=m["region"],
        account=m["account"],
    )


def _parse_ssm_arn(value: str) -> SecretRef:
    m = _SSM_ARN.fullmatch(value)
    if m is None or not _SSM_NAME.fullmatch(m["name"]) or m["name"].startswith("/"):
        raise ValueFromError(
            "valueFrom is not a well-formed SSM parameter ARN (expected arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)"
        )
    # The ARN of "/a/b" is ".../parameter/a/b": the hierarchy's leading "/" is folded into "parameter/".
    name = "/" + m["name"] if "/" in m["name"] else m["name"]
    return SecretRef(store="ssm", secret_id=name, name=name, region=m["region"], account=m["account"])


def _parse_ssm_name(value: str) -> SecretRef:
    if looks_like_secret_value(value):
        raise ValueFromError(
            "the valueFrom looks like a secret value, not a reference: store the value in the secret and give "
            "its ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME:KEY::)"
        )
    if ":" in value:
        raise ValueFromError(
            "valueFrom is not an ARN, so ECS reads it as an SSM parameter name, which cannot contain ':'; "
            "a Secrets Manager secret needs its ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME:KEY::)"
        )
    if not _SSM_NAME.fullmatch(value) or len(value) > 2048:
        raise ValueFromError("valueFrom is neither an ARN nor a valid SSM parameter name")
    if "/" in value and not value.startswith("/"):
        raise ValueFromError(
            "valueFrom is not an ARN, so ECS reads it as an SSM parameter name, and a hierarchical parameter "
            "name must start with '/'; a Secrets Manager secret needs its ARN"
        )
    return SecretRef(store="ssm", secret_id=value, name=value)


def secret_of_key(container: dict[str, Any] | None) -> dict[str, str]:
    """JSON key -> secret name for a container definition's ``secrets`` (to name a cause such as "secret
    arbiter-ai/production has no key STRIPE_PRICE_ID"); references that do not parse are left out."""
    out: dict[str, str] = {}
    for entry in (container or {}).get("secrets") or []:
        try:
            ref = parse_value_from(entry.get("valueFrom"))
        except ValueFromError:
            continue
        if ref.key:
            out.setdefault(ref.key, ref.name)
    return out
