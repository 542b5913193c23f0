"""Fault injection shared by every sandbox server (AWS, Stripe, Arbiter API).

A fault is decided *before* a request reaches the emulator, so nothing is half done (as with AWS
throttling). Rules match an operation name ("DescribeServices", "ecs:DescribeServices", "GET /health",
or "*"), fire for the next ``count`` matching requests or with a **seeded** probability (so a test is
deterministic), and either add latency, answer a throttling error, or answer a server error.

Each server turns a :class:`Fault` into its own protocol's error body; this module knows no protocol.
Control is over HTTP (``POST /_sandbox/faults`` with a rule as JSON, ``DELETE /_sandbox/faults``) so a CLI
subprocess is affected, and from Python through :class:`FaultPlan`.
"""

from __future__ import annotations

import fnmatch
import random
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any, Literal

FaultKind = Literal["throttle", "error", "latency", "down"]
KINDS: tuple[str, ...] = ("throttle", "error", "latency", "down")


class FaultRuleError(ValueError):
    """A fault rule sent over HTTP or from Python is malformed."""


@dataclass
class FaultRule:
    kind: FaultKind
    operation: str = "*"
    count: int | None = None
    probability: float | None = None
    seed: int | None = None
    status: int = 500
    latency_ms: int = 0
    message: str | None = None
    id: int = 0
    fired: int = 0
    most_at_once: int = 0  # a latency rule: the most of its requests it held at the same moment
    _rng: random.Random | None = field(default=None, repr=False, compare=False)
    _held: int = field(default=0, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def matches(self, operation: str, service: str | None) -> bool:
        names = {operation}
        if service:
            names.add(f"{service}:{operation}")
        return any(fnmatch.fnmatchcase(n, self.operation) for n in names)

    def public(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def hold(self, seconds: float) -> None:
        """Delay one request, counting how many this rule holds at once (a client's concurrency, seen from here)."""
        with self._lock:
            self._held += 1
            self.most_at_once = max(self.most_at_once, self._held)
        try:
            time.sleep(seconds)
        finally:
            with self._lock:
                self._held -= 1


@dataclass(frozen=True)
class Fault:
    """What a server must do with one request."""

    kind: FaultKind
    status: int
    latency_s: float
    message: str
    rule_id: int
    rule: FaultRule | None = field(default=None, repr=False, compare=False)


def parse_rule(data: dict[str, Any]) -> FaultRule:
    """Build a rule from JSON, rejecting what would make a test silently meaningless."""
    if not isinstance(data, dict):
        raise FaultRuleError("a fault rule is a JSON object")
    allowed = {"kind", "operation", "count", "probability", "seed", "status", "latency_ms", "message"}
    unknown = set(data) - allowed
    if unknown:
        raise FaultRuleError(f"unknown fault rule field(s): {', '.join(sorted(unknown))}")
    kind = data.get("kind")
    if kind not in KINDS:
        raise FaultRuleError(f"fault kind must be one of {', '.join(KINDS)}")
    count = data.get("count")
    probability = data.get("probability")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise FaultRuleError("count must be a positive integer")
    if probability is not None:
        if not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
            raise FaultRuleError("probability must be between 0 and 1")
        if data.get("seed") is None:
            raise FaultRuleError("a probability needs a seed, so that the run is repeatable")
    status = int(data.get("status", 503 if kind == "down" else 500))
    rule = FaultRule(
        kind=kind,
        operation=str(data.get("operation", "*")),
        count=count,
        probability=float(probability) if probability is not None else None,
        seed=data.get("seed"),
        status=status,
        latency_ms=int(data.get("latency_ms", 0)),
        message=data.get("message"),
    )
    if rule.probability is not None:
        rule._rng = random.Random(rule.seed)
    return rule


class FaultPlan:
    """The active rules of one server; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._next_id = 1

    def add(self, rule: FaultRule | dict[str, Any]) -> FaultRule:
        if isinstance(rule, dict):
            rule = parse_rule(rule)
        with self._lock:
            rule.id = self._next_id
            self._next_id += 1
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.public() for r in self._rules]

    def decide(self, operation: str, service: str | None = None) -> Fault | None:
        """Return the fault to apply to this request, consuming counts and random draws.

        Rules are consulted in the order they were added; the first that fires wins.
        """
        with self._lock:
            for rule in list(self._rules):
                if not rule.matches(operation, service):
                    continue
                if rule._rng is not None and rule._rng.random() >= (rule.probability or 0.0):
                    continue
                rule.fired += 1
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
                return Fault(
                    kind=rule.kind,
                    status=rule.status,
                    latency_s=rule.latency_ms / 1000.0,
                    message=rule.message or _default_message(rule.kind),
                    rule_id=rule.id,
                    rule=rule,
                )
        return None


def _default_message(kind: str) -> str:
    return {
        "throttle": "Rate exceeded",
        "error": "We encountered an internal error. Please try again.",
        "latency": "",
        "down": "Service Unavailable",
    }[kind]


def apply_latency(fault: Fault | None) -> None:
    """Sleep for a latency fault (or the latency part of any fault)."""
    if fault is not None and fault.latency_s > 0:
        if fault.rule is not None:
            fault.rule.hold(fault.latency_s)
        else:
            time.sleep(fault.latency_s)
