"""The audit records as `history` shows them: one row per record, whatever command wrote it (pure).

deploy records ``image_tag``, ``before``/``after`` (service -> task definition ARN), ``ok``, ``rolled_back``,
``verdicts`` (service -> {verdict, cause, failed_tasks, first_failure}) and ``duration_ms``; a rollback is a
deploy record with ``action: "rollback"``; migrate records its task (``task_definition``, ``ok``, ``exit_code``,
``reason``, ``created_at``/``stopped_at``); run records ``service``, ``verdict``, ``exit_code``, ``duration_ms``.
Records written before a field existed simply lack it: the row then says nothing (``None``), never a guess.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from arbiter_ops.core.aws import arn_name


def command_of(entry: dict[str, Any]) -> str:
    return str(entry.get("action") or entry.get("kind") or "deploy")


def services_of(entry: dict[str, Any], families: dict[str, str]) -> list[str]:
    """The services a record is about; a migration is its task definition's service (the backend's family)."""
    if entry.get("services"):
        return [str(s) for s in entry["services"]]
    if entry.get("service"):
        return [str(entry["service"])]
    family = arn_name(str(entry.get("task_definition") or "")).rpartition(":")[0]
    return [name for name, fam in families.items() if fam == family]


def verdict_of(entry: dict[str, Any]) -> str:
    """ok | rolled back | failed | interrupted, or the run's own verdict (`ok`, `failed`, `did-not-start`, ...)."""
    if "ok" not in entry and entry.get("verdict"):  # run and migrate record their task's verdict
        return str(entry["verdict"])
    if entry.get("ok"):
        return "ok"
    error = str(entry.get("error") or "")
    if "interrupted" in error:
        return "interrupted"
    if entry.get("rolled_back"):
        return "rolled back"
    return "failed"


def duration_ms(entry: dict[str, Any]) -> int | None:
    if isinstance(entry.get("duration_ms"), int | float):
        return int(entry["duration_ms"])
    started, stopped = entry.get("created_at"), entry.get("stopped_at")  # a migration's task
    if started and stopped:
        try:
            return int((datetime.fromisoformat(stopped) - datetime.fromisoformat(started)).total_seconds() * 1000)
        except (TypeError, ValueError):
            return None
    return None


def revisions_of(entry: dict[str, Any]) -> dict[str, dict[str, str | None]]:
    """service -> {before, after} as ``family:revision``; a migration or run names the one it ran as ``after``."""
    before, after = entry.get("before") or {}, entry.get("after") or {}
    out: dict[str, dict[str, str | None]] = {}
    for service in dict.fromkeys([*before, *after]):
        b, a = before.get(service), after.get(service)
        out[service] = {"before": arn_name(b) if b else None, "after": arn_name(a) if a else None}
    if not out and entry.get("task_definition"):
        out["task"] = {"before": None, "after": arn_name(str(entry["task_definition"]))}
    return out


def row(entry: dict[str, Any], families: dict[str, str]) -> dict[str, Any]:
    verdicts = entry.get("verdicts") or {}
    return {
        "at": entry.get("at"),
        "who": entry.get("who"),
        "caller": entry.get("caller"),
        "kind": entry.get("kind"),
        "command": command_of(entry),
        "services": services_of(entry, families),
        "image_tag": entry.get("image_tag"),
        "revisions": revisions_of(entry),
        "ok": bool(entry.get("ok")) if "ok" in entry else entry.get("verdict") == "ok",
        "verdict": verdict_of(entry),
        "verdicts": {s: v.get("verdict") for s, v in verdicts.items() if isinstance(v, dict)},
        "duration_ms": duration_ms(entry),
        "error": entry.get("error") or (entry.get("reason") if not entry.get("ok") else None),
    }


def revisions_text(revisions: dict[str, dict[str, str | None]]) -> str:
    """``backend 6 -> 7, frontend 3`` (the number alone where nothing changed)."""
    parts = []
    for service, pair in revisions.items():
        b, a = (_number(pair.get("before")), _number(pair.get("after")))
        parts.append(f"{service} {a or b}" if a is None or b in (a, None) else f"{service} {b} -> {a}")
    return ", ".join(parts)


def _number(name: str | None) -> str | None:
    return name.rpartition(":")[2] if name else None


def when_text(at: str | None) -> str:
    """``2026-12-01 19:24:42`` (the records are UTC)."""
    return (at or "")[:19].replace("T", " ")


def duration_text(ms: int | None) -> str:
    if ms is None:
        return ""
    seconds = ms / 1000
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {int(seconds % 60)} s"
