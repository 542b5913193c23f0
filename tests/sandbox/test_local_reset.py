"""The local sandbox's reset between tests: the application's resources always come back fresh; the
infrastructure (network, databases, certificate, load balancer, CDN, DNS) is kept only while nobody wrote to it,
and rebuilt as soon as a request did or moto's process-wide state was reset by another server. Plain boto3."""

from __future__ import annotations

from typing import Any

from conftest import sandbox_client


def _state(sandbox: Any) -> dict[str, Any]:
    ec2, ecs = sandbox_client(sandbox, "ec2"), sandbox_client(sandbox, "ecs")
    services = ecs.describe_services(cluster="arbiter-ai", services=["backend"])["services"]
    return {
        "subnets": sorted(s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]),
        "tags": [t for sg in ec2.describe_security_groups()["SecurityGroups"] for t in sg.get("Tags", [])],
        "backend": services[0]["taskDefinition"].rsplit("/", 1)[-1],
        "families": ecs.list_task_definition_families()["families"],
    }


def test_a_reset_keeps_untouched_infrastructure_and_renews_the_application(sandbox: Any) -> None:
    before = _state(sandbox)
    ecs = sandbox_client(sandbox, "ecs")
    ecs.register_task_definition(family="scratch", containerDefinitions=[{"name": "a", "image": "x", "memory": 64}])
    sandbox_client(sandbox, "ec2").describe_vpcs()  # reading does not count as a change
    sandbox.reset()
    after = _state(sandbox)
    assert after["subnets"] == before["subnets"]  # the same infrastructure, not built again
    assert "scratch" not in after["families"] and after["backend"] == "arbiter-backend:1"


def test_a_write_to_the_infrastructure_makes_the_next_reset_rebuild_it(sandbox: Any) -> None:
    before = _state(sandbox)
    group = sandbox.seeded.infra.ecs_sg
    sandbox_client(sandbox, "ec2").create_tags(Resources=[group], Tags=[{"Key": "left", "Value": "by a test"}])
    assert {"Key": "left", "Value": "by a test"} in _state(sandbox)["tags"]
    sandbox.reset()
    after = _state(sandbox)
    assert {"Key": "left", "Value": "by a test"} not in after["tags"]
    assert after["subnets"] != before["subnets"]  # built again: new ids


def test_a_reset_of_moto_by_another_server_is_noticed(sandbox: Any) -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()  # as a plain moto server of the same process does on /moto-api/reset
    sandbox.reset()
    state = _state(sandbox)
    assert state["subnets"] and state["backend"] == "arbiter-backend:1"
    sandbox_client(sandbox, "elbv2").describe_target_groups(TargetGroupArns=list(sandbox.seeded.target_groups.values()))
