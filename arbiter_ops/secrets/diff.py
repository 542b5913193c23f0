"""`secrets diff ENV_A ENV_B`: two environments' secrets side by side, by key and by the *kind* of each value
(``postgresql+asyncpg://``, ``sk_test_``, ``text``...), never by value.

Each side is read once (GetSecretValue of AWSCURRENT, the payload registered with the redactor) and reduced to
kinds at once, so no value travels further. A problem (exit 1) is a key a rendered task definition of one
environment references and its secret lacks (ECS would fail the task at start), or a referenced key whose kind
differs where it must not (a ``postgres://`` URL in one, ``postgresql+asyncpg://`` in the other). Stripe keys
*must* differ between production and the others (live vs test mode): that difference is reported as expected.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from arbiter_ops.secrets.rules import placeholder_reason

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,30}://", re.IGNORECASE)
# Well-known prefixes that say what a value is, and for Stripe which mode it belongs to.
_PREFIXES = ("sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_", "whsec_", "price_", "prod_")
_MODE = re.compile(r"^(?:sk|rk|pk)_(test|live)_$")


def kind_of(value: Any) -> str:
    """What a value is, in words that can be printed: a URL scheme, a known prefix, or a broad type."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if not isinstance(value, str):
        return "JSON " + ("object" if isinstance(value, dict) else "array" if isinstance(value, list) else "null")
    if not value.strip():
        return "empty"
    if placeholder_reason(value):
        return "placeholder"
    scheme = _SCHEME.match(value.strip())
    if scheme:
        return scheme.group(0).lower()
    prefix = next((p for p in _PREFIXES if value.startswith(p)), None)
    if prefix:
        return prefix
    if value.strip().lower() in ("true", "false"):
        return "boolean"
    return "number" if re.fullmatch(r"-?\d+(?:\.\d+)?", value.strip()) else "text"


@dataclass(frozen=True)
class Side:
    env: str
    secret: str
    exists: bool
    production: bool
    kinds: dict[str, str]  # key -> kind, in the secret's order
    referenced: dict[str, list[str]]  # key -> services of this environment that reference it


def side(ctx: Context, env_name: str) -> Side:
    """One environment's secret reduced to kinds, and the keys its rendered task definitions reference."""
    from arbiter_ops.core.context import Context
    from arbiter_ops.secrets.check import rendered_inputs
    from arbiter_ops.secrets.importer import referenced_keys
    from arbiter_ops.secrets.store import read_current_or_none

    ctx.config.environment(env_name)  # an unknown environment is bad input (exit 2)
    other = ctx
    if env_name != ctx.env_name:
        options = dataclasses.replace(ctx.options, env=env_name)
        other = Context(options, ctx.config, ctx.output, command=ctx.command, find_local=ctx.find_local)
    try:
        inputs = rendered_inputs(other)
        snapshot = read_current_or_none(other.client("secretsmanager"), other.secret_id)
        kinds = {k: kind_of(v) for k, v in snapshot.payload.items()} if snapshot else {}
        arn = snapshot.arn if snapshot else None
        referenced = referenced_keys(inputs, other.secret_id, arn)
        return Side(env_name, other.secret_id, snapshot is not None, other.is_production, kinds, referenced)
    finally:
        if other is not ctx:
            other.close()


@dataclass(frozen=True)
class Row:
    key: str
    kind_a: str | None
    kind_b: str | None
    status: str  # same | only-a | only-b | missing-referenced | kind-differs | kind-differs-expected | ...
    note: str
    problem: bool


@dataclass
class Comparison:
    a: Side
    b: Side
    rows: list[Row] = field(default_factory=list)

    @property
    def problems(self) -> list[Row]:
        return [r for r in self.rows if r.problem]

    def verdict(self) -> str:
        only_a = sum(r.kind_b is None for r in self.rows)
        only_b = sum(r.kind_a is None for r in self.rows)
        head = (
            f"secrets diff {self.a.env} {self.b.env}: {len(self.rows)} keys, {only_a} only in {self.a.env}, "
            f"{only_b} only in {self.b.env}"
        )
        if self.problems:
            return f"{head}; {len(self.problems)} problem(s): {', '.join(r.key for r in self.problems)}"
        return f"{head}; no problem"

    def as_json(self) -> dict[str, Any]:
        def env(s: Side) -> dict[str, Any]:
            return {"name": s.env, "secret": s.secret, "exists": s.exists, "keys": len(s.kinds)}

        return {
            "environments": [env(self.a), env(self.b)],
            "keys": [
                {
                    "key": r.key,
                    "kinds": {self.a.env: r.kind_a, self.b.env: r.kind_b},
                    "referenced_by": {
                        self.a.env: self.a.referenced.get(r.key, []),
                        self.b.env: self.b.referenced.get(r.key, []),
                    },
                    "status": r.status,
                    "problem": r.problem,
                    "note": r.note,
                }
                for r in self.rows
            ],
            "summary": {
                "keys": len(self.rows),
                "only_in": {
                    self.a.env: sum(r.kind_b is None for r in self.rows),
                    self.b.env: sum(r.kind_a is None for r in self.rows),
                },
                "problems": len(self.problems),
            },
        }


def _row(a: Side, b: Side, key: str) -> Row:
    ka, kb = a.kinds.get(key), b.kinds.get(key)
    for mine, theirs, me, them in ((ka, kb, a, b), (kb, ka, b, a)):
        if mine is None and theirs is not None:
            used = me.referenced.get(key)
            status = "only-a" if me is b else "only-b"
            if used:
                where = f"{me.secret} lacks it" if me.exists else f"{me.secret} does not exist"
                note = f"{me.env}'s {', '.join(used)} reference it and {where} (ECS fails the task at start)"
                return Row(key, ka, kb, "missing-referenced", note, True)
            return Row(key, ka, kb, status, f"only in {them.env}", False)
    if ka is None and kb is None:  # referenced by both, in neither secret
        return Row(key, None, None, "missing-referenced", "referenced, and in neither secret", True)
    if ka == kb:
        if ka and _MODE.match(ka) and a.production != b.production:
            return Row(key, ka, kb, "same-mode", f"a Stripe {ka} key in both production and not: one is wrong", True)
        return Row(key, ka, kb, "same", "", False)
    mode_a, mode_b = (_MODE.match(k or "") for k in (ka, kb))
    if mode_a and mode_b and mode_a.group(1) != mode_b.group(1) and a.production != b.production:
        return Row(key, ka, kb, "kind-differs-expected", "Stripe test vs live mode: expected", False)
    if "placeholder" in (ka, kb) or "empty" in (ka, kb):
        which = a.env if ka in ("placeholder", "empty") else b.env
        return Row(key, ka, kb, "kind-differs", f"{which} still holds a placeholder or nothing", True)
    referenced = bool(a.referenced.get(key) or b.referenced.get(key))
    note = "the kind of value differs" + ("" if referenced else " (no container references it)")
    return Row(key, ka, kb, "kind-differs", note, referenced)


def compare(a: Side, b: Side) -> Comparison:
    keys = list(dict.fromkeys([*a.kinds, *b.kinds, *a.referenced, *b.referenced]))
    return Comparison(a, b, [_row(a, b, key) for key in keys])
