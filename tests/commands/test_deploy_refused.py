"""AWS refusing an UpdateService mid-deploy (a service deleted meanwhile, a role that may update only some): the
deploy never leaves mixed versions behind, and never calls AWS's answer an internal error."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from conftest import sandbox_client


@contextmanager
def once_fired(rule: Any, action: Callable[[], object]) -> Iterator[None]:
    """Run ``action`` (as another person would, from another thread) as soon as ``rule`` has fired once."""

    def run() -> None:
        deadline = time.monotonic() + 30
        while rule.fired < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def deleted_while_registering(sandbox: Any, service: str) -> Any:
    """Delete ``service`` (plain boto3) while the deploy registers its task definitions: after the register step
    read the services, before the update step reaches them."""
    rule = sandbox.aws.faults.add({"kind": "latency", "operation": "RegisterTaskDefinition", "latency_ms": 800})
    ecs = sandbox_client(sandbox, "ecs")
    return once_fired(rule, lambda: ecs.delete_service(cluster="arbiter-ai", service=service, force=True))


def _task_definition(sandbox: Any, service: str) -> str:
    ecs = sandbox_client(sandbox, "ecs")
    svc = ecs.describe_services(cluster="arbiter-ai", services=[service])["services"][0]
    return str(svc["taskDefinition"]).rsplit("/", 1)[-1]


def test_an_update_refused_after_another_was_sent_puts_that_one_back(sandbox, cli) -> None:
    with deleted_while_registering(sandbox, "frontend"):
        r = cli("--output", "json", "deploy", "--image-tag", "v2", "--no-migrate", "--no-smoke")
    assert r.code == 1, r.err  # a deploy that failed and was rolled back
    doc = r.json()
    steps = {s["name"]: s for s in doc["steps"]}
    said = "UpdateService of frontend failed (ServiceNotActiveException on UpdateService: Service was not ACTIVE.)"
    assert steps["update"]["status"] == "failed" and said in steps["update"]["detail"]
    assert "backend had been updated" in steps["update"]["detail"]
    assert steps["rollback"]["status"] == "ok" and doc["rolled_back"] is True
    assert doc["error"]["code"] == "rolled-back" and said in doc["error"]["message"]
    assert _task_definition(sandbox, "backend") == "arbiter-backend:1"  # no mixed versions left behind
    assert "internal" not in r.err and "internal" not in r.out


def test_an_update_refused_when_none_was_sent_changes_nothing_and_is_exit_3(sandbox, cli) -> None:
    # The services' updates go out at once: only when every one is refused (here the only one) was none sent.
    with deleted_while_registering(sandbox, "backend"):
        r = cli("--output", "json", "deploy", "backend", "--image-tag", "v2", "--no-migrate", "--no-smoke")
    assert r.code == 3, r.err  # AWS refused: an external failure
    doc = r.json()
    assert doc["error"]["code"] == "aws-refused", doc["error"]
    assert "ServiceNotActiveException on UpdateService: Service was not ACTIVE." in doc["error"]["message"]
    assert "internal" not in r.err and "a bug in arbiter-ops" not in r.out
    steps = {s["name"]: s for s in doc["steps"]}  # the deploy's own summary, step by step
    assert steps["update"]["status"] == "failed" and steps["unlock"]["status"] == "ok" and "rollback" not in steps
    assert doc["api_calls"]["by_operation"]["ecs:UpdateService"] == 1
    assert doc["rolled_back"] is False


def test_the_other_services_update_is_put_back_when_the_first_is_refused(sandbox, cli) -> None:
    with deleted_while_registering(sandbox, "backend"):
        r = cli("--output", "json", "deploy", "--image-tag", "v2", "--no-migrate", "--no-smoke")
    assert r.code == 1, r.err
    doc = r.json()
    assert "UpdateService of backend failed (ServiceNotActiveException" in doc["error"]["message"]
    assert doc["rolled_back"] is True
    assert _task_definition(sandbox, "frontend") == "arbiter-frontend:1"  # sent at the same time, then put back


def test_a_way_back_deregistered_meanwhile_is_exit_4_in_aws_words(sandbox, cli) -> None:
    """Someone deregisters the revision the deploy would roll back to (a clean-up, `prune` elsewhere) while the
    new one crash-loops: ECS refuses UpdateService to an INACTIVE revision (API reference, DeregisterTaskDefinition:
    "you can't update an existing service to reference an INACTIVE task definition"). A human must look: exit 4."""
    sandbox.aws.ecs.fail_next_deployment("backend", kind="crash", exit_code=1, log_lines=["boom"])
    sent = sandbox.aws.faults.add({"kind": "latency", "operation": "UpdateService", "latency_ms": 1})
    ecs = sandbox_client(sandbox, "ecs")
    with once_fired(sent, lambda: ecs.deregister_task_definition(taskDefinition="arbiter-backend:1")):
        r = cli("--output", "json", "deploy", "backend", "--image-tag", "v2", "--no-migrate", "--no-smoke")
    assert r.code == 4, r.err
    doc = r.json()
    steps = {s["name"]: s for s in doc["steps"]}
    assert steps["rollback"]["status"] == "failed"
    assert steps["rollback"]["detail"] == "ClientException on UpdateService: TaskDefinition is inactive"
    assert doc["error"]["code"] == "rollback-failed" and "a human must look now" in doc["error"]["message"]
