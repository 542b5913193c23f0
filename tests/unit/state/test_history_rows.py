"""`history` rows from each command's audit record (pure): verdicts, revisions, durations, old records."""

from __future__ import annotations

from arbiter_ops.state.history import duration_text, revisions_text, row

TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/"
FAMILIES = {"backend": "arbiter-backend", "frontend": "arbiter-frontend"}


def test_a_rolled_back_deploy() -> None:
    entry = {
        "kind": "deploy",
        "image_tag": "v2",
        "services": ["backend", "frontend"],
        "ok": False,
        "rolled_back": True,
        "before": {"backend": f"{TD}arbiter-backend:6", "frontend": f"{TD}arbiter-frontend:3"},
        "after": {"backend": f"{TD}arbiter-backend:6", "frontend": f"{TD}arbiter-frontend:3"},
        "verdicts": {"backend": {"verdict": "failed-to-start"}, "frontend": {"verdict": "unchanged"}},
        "duration_ms": 61234,
        "error": "deploy failed and was rolled back: ...",
    }
    r = row(entry, FAMILIES)
    assert (r["command"], r["verdict"], r["ok"]) == ("deploy", "rolled back", False)
    assert r["verdicts"] == {"backend": "failed-to-start", "frontend": "unchanged"}
    assert revisions_text(r["revisions"]) == "backend 6, frontend 3"
    assert duration_text(r["duration_ms"]) == "1 min 1 s"


def test_a_rollback_an_interrupted_one_and_an_old_record_without_duration() -> None:
    entry = {
        "kind": "deploy",
        "action": "rollback",
        "services": ["backend"],
        "ok": True,
        "before": {"backend": f"{TD}arbiter-backend:7"},
        "after": {"backend": f"{TD}arbiter-backend:6"},
    }
    r = row(entry, FAMILIES)
    assert (r["command"], r["verdict"], r["duration_ms"]) == ("rollback", "ok", None)
    assert revisions_text(r["revisions"]) == "backend 7 -> 6" and duration_text(None) == ""
    stopped = row({**entry, "ok": False, "error": "interrupted by SIGTERM"}, FAMILIES)
    assert stopped["verdict"] == "interrupted"


def test_a_migration_is_the_backends_and_a_run_keeps_its_verdict() -> None:
    migration = {
        "kind": "migrate",
        "task_definition": f"{TD}arbiter-backend:3",
        "verdict": "failed",
        "reason": "the migration exited 1",
        "created_at": "2026-12-01T10:00:00+00:00",
        "stopped_at": "2026-12-01T10:00:42+00:00",
    }
    r = row(migration, FAMILIES)
    assert r["services"] == ["backend"] and r["verdict"] == "failed" and r["ok"] is False
    assert r["duration_ms"] == 42000 and r["error"] == "the migration exited 1"
    assert revisions_text(r["revisions"]) == "task 3"
    run = row({"kind": "run", "service": "frontend", "verdict": "did-not-start", "duration_ms": 900}, FAMILIES)
    assert (run["services"], run["verdict"], duration_text(run["duration_ms"])) == (
        ["frontend"],
        "did-not-start",
        "0.9 s",
    )
