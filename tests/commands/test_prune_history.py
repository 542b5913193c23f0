"""`prune` and `history` against the sandbox over HTTP, after six deploys (the last one failing and rolled back)
and a rollback; and the ECR lifecycle policy `bootstrap` puts on the repositories."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import sandbox_client

from arbiter_ops.images.lifecycle import policy

MUTATING = ("Register", "Deregister", "Update", "Put", "Delete", "Run", "Stop", "Create", "Tag")
TAGS = ["v2", "v1", "v2", "v1", "v2", "v1"]  # each tag differs from the live one: a new revision every time


def _deploy(cli: Any, tag: str) -> Any:
    return cli("--output", "json", "deploy", "backend", "--image-tag", tag, "--no-migrate", "--no-smoke")


@pytest.fixture
def six_deploys_and_a_rollback(sandbox: Any, cli: Any) -> dict[str, Any]:
    """Revisions 2..6 deployed fine; the sixth deploy registered 7, failed and was rolled back to 6; then
    `rollback backend` returned to 5, the revision the fifth deploy replaced. The service runs 5."""
    docs = []
    for i, tag in enumerate(TAGS):
        if i == 5:
            sandbox.aws.ecs.fail_next_deployment("backend")
        r = _deploy(cli, tag)
        assert r.code == (1 if i == 5 else 0), r.err
        docs.append(r.json())
    assert docs[-1]["rolled_back"] is True
    back = cli("--output", "json", "rollback", "backend")
    assert back.code == 0, back.err
    assert back.json()["to"].endswith("arbiter-backend:5")
    return {"deploys": docs, "rollback": back.json()}


def _active(sandbox: Any, family: str = "arbiter-backend") -> list[int]:
    arns = sandbox_client(sandbox, "ecs").list_task_definitions(familyPrefix=family, status="ACTIVE")
    return sorted(int(a.rsplit(":", 1)[1]) for a in arns["taskDefinitionArns"])


def _ops(doc: dict[str, Any]) -> list[str]:
    return [k.split(":", 1)[1] for k in doc["api_calls"]["by_operation"]]


def test_prune_keeps_the_newest_the_live_and_the_way_back(sandbox, cli, six_deploys_and_a_rollback) -> None:
    assert _active(sandbox) == [1, 2, 3, 4, 5, 6, 7]
    dry = cli("--output", "json", "prune", "--keep", "2", "--dry-run")
    assert dry.code == 0, dry.err
    assert not [op for op in _ops(dry.json()) if op.startswith(MUTATING)], dry.json()["api_calls"]
    assert _active(sandbox) == [1, 2, 3, 4, 5, 6, 7]
    backend = next(f for f in dry.json()["families"] if f["family"] == "arbiter-backend")
    kept = {k["task_definition"].rsplit(":", 1)[1]: k["reasons"] for k in backend["kept"]}
    assert kept == {
        "7": ["newest"],  # the failed deploy's revision: newest, nothing else
        "6": ["newest", "rollback-target"],  # `rollback backend` now would return to it
        "5": ["live", "last-good"],  # the service runs it; the latest successful deploy replaced it
    }
    assert [a.rsplit(":", 1)[1] for a in backend["deregister"]] == ["1", "2", "3", "4"]
    frontend = next(f for f in dry.json()["families"] if f["family"] == "arbiter-frontend")
    assert frontend["deregister"] == [] and [k["reasons"] for k in frontend["kept"]] == [["newest", "live"]]

    real = cli("--output", "json", "prune", "--keep", "2")
    assert real.code == 0, real.err
    assert [a.rsplit(":", 1)[1] for a in real.json()["deregistered"]] == ["1", "2", "3", "4"]
    assert real.json()["api_calls"]["by_operation"]["ecs:DeregisterTaskDefinition"] == 4
    assert _active(sandbox) == [5, 6, 7]
    again = cli("--output", "json", "prune", "--keep", "2")
    assert again.code == 0 and again.json()["deregistered"] == []
    assert "DeregisterTaskDefinition" not in _ops(again.json())
    # the way back still works: rollback returns to 6, which prune kept
    assert cli("rollback", "backend").code == 0


def test_prune_text_says_what_it_keeps_and_why(sandbox, cli, six_deploys_and_a_rollback) -> None:
    r = cli("prune", "backend", "--keep", "1", "--dry-run")
    assert r.code == 0, r.err
    assert "arbiter-backend:5" in r.out and "the service runs it" in r.out
    assert "`rollback` would return to it" in r.out
    assert "would deregister 4 revisions, kept 3" in r.out  # 7 newest, 6 rollback target, 5 live
    assert _active(sandbox) == [1, 2, 3, 4, 5, 6, 7]


def test_prune_keeps_every_revision_a_current_deployment_runs(sandbox, cli) -> None:
    """A rollout in progress: its PRIMARY deployment's revision and the ACTIVE one it replaces are both kept."""
    assert _deploy(cli, "v2").code == 0
    ecs = sandbox_client(sandbox, "ecs")
    ecs.update_service(cluster="arbiter-ai", service="backend", taskDefinition="arbiter-backend:1")  # someone's
    deployments = ecs.describe_services(cluster="arbiter-ai", services=["backend"])["services"][0]["deployments"]
    assert {d["taskDefinition"].rsplit(":", 1)[1] for d in deployments} == {"1", "2"}
    r = cli("--output", "json", "prune", "backend", "--keep", "1", "--dry-run")
    backend = r.json()["families"][0]
    reasons = {k["task_definition"].rsplit(":", 1)[1]: k["reasons"] for k in backend["kept"]}
    assert "live" in reasons["1"] and "deployment" in reasons["2"] and backend["deregister"] == []


def test_history_lists_the_six_deploys_and_the_rollback_with_their_verdicts(
    sandbox, cli, six_deploys_and_a_rollback
) -> None:
    r = cli("--output", "json", "history")
    assert r.code == 0, r.err
    records = r.json()["records"]
    assert [x["command"] for x in records] == ["rollback"] + ["deploy"] * 6  # newest first
    assert [x["image_tag"] for x in records[1:]] == list(reversed(TAGS))
    assert [x["verdict"] for x in records] == ["ok", "rolled back"] + ["ok"] * 5
    assert records[1]["verdicts"]["backend"] not in (None, "unchanged", "succeeded")  # the failed rollout's own
    assert records[0]["revisions"] == {"backend": {"before": "arbiter-backend:6", "after": "arbiter-backend:5"}}
    assert records[2]["revisions"] == {"backend": {"before": "arbiter-backend:5", "after": "arbiter-backend:6"}}
    assert all(isinstance(x["duration_ms"], int) and x["duration_ms"] >= 0 for x in records)
    assert all(x["who"] and x["at"] and x["services"] == ["backend"] for x in records)
    ats = [x["at"] for x in records]
    assert ats == sorted(ats, reverse=True)


def test_history_of_one_service_with_a_limit_and_the_text_table(
    sandbox, cli, six_deploys_and_a_rollback, monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    limited = cli("--output", "json", "history", "backend", "--limit", "2")
    assert [x["command"] for x in limited.json()["records"]] == ["rollback", "deploy"]
    assert cli("--output", "json", "history", "frontend").json()["records"] == []
    text = cli("history", "--limit", "3")
    assert text.code == 0, text.err
    assert "backend 6 -> 5" in text.out and "rolled back" in text.out and "rollback" in text.out


def test_history_shows_migrations_and_runs(sandbox, cli) -> None:
    assert cli("migrate").code == 0
    assert cli("run", "backend", "--", "python", "-c", "print(1)").code == 0
    records = cli("--output", "json", "history", "backend").json()["records"]
    assert [x["command"] for x in records] == ["run", "migrate"]
    assert [x["verdict"] for x in records] == ["ok", "ok"]
    assert records[1]["revisions"] == {"task": {"before": None, "after": "arbiter-backend:1"}}
    assert all(isinstance(x["duration_ms"], int) for x in records)


def test_bootstrap_puts_the_lifecycle_policy_once_and_leaves_a_foreign_one(sandbox, cli) -> None:
    ecr = sandbox_client(sandbox, "ecr")
    first = cli("--output", "json", "bootstrap")
    assert first.code == 0, first.err
    assert first.json()["lifecycle_policy"]["repositories"] == {
        "arbiter-ai/backend": "created",
        "arbiter-ai/frontend": "created",
    }
    stored = json.loads(ecr.get_lifecycle_policy(repositoryName="arbiter-ai/backend")["lifecyclePolicyText"])
    assert stored == policy() and stored["rules"][0]["selection"]["tagStatus"] == "untagged"
    second = cli("--output", "json", "bootstrap")
    assert set(second.json()["lifecycle_policy"]["repositories"].values()) == {"unchanged"}
    assert "ecr:PutLifecyclePolicy" not in second.json()["api_calls"]["by_operation"]
    theirs = {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 500},
                "action": {"type": "expire"},
            }
        ]
    }
    ecr.put_lifecycle_policy(repositoryName="arbiter-ai/frontend", lifecyclePolicyText=json.dumps(theirs))
    third = cli("--output", "json", "bootstrap")
    assert third.json()["lifecycle_policy"]["repositories"]["arbiter-ai/frontend"] == "foreign"
    assert "left as it is" in third.err
    assert json.loads(ecr.get_lifecycle_policy(repositoryName="arbiter-ai/frontend")["lifecyclePolicyText"]) == theirs
    text = cli("bootstrap")
    assert "untagged images expire after 14 days" in text.out and '"countNumber": 14' in text.out
