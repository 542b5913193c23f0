"""What each infrastructure and application check watches: break that one thing in the sandbox (over HTTP,
as an operator's mistake would), and exactly that check fails, naming the reason, with exit 1."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

from conftest import context, sandbox_client

CLUSTER = "arbiter-ai"


def smoke(cli: Any, *args: str) -> tuple[Any, dict[str, dict[str, Any]]]:
    result = cli("smoke-test", "--output", "json", *args)
    return result, {c["id"]: c for c in result.json()["checks"]}


def only_failure(cli: Any) -> tuple[str, str]:
    """Run the whole checklist; return the one failing check and its detail (and insist it is one)."""
    result, checks = smoke(cli)
    failing = {i: c["detail"] for i, c in checks.items() if c["status"] == "fail"}
    assert result.code == 1, result.text
    assert len(failing) == 1, failing
    return next(iter(failing.items()))


def local_ctx() -> Any:
    from arbiter_ops.core.output import Output

    return context("local", Output())


# -- rds, redis ----------------------------------------------------------------------------------
def test_rds_backup_retention_below_seven_days(sandbox, cli) -> None:
    rds = sandbox_client(sandbox, "rds")
    rds.modify_db_instance(DBInstanceIdentifier="arbiter-db", BackupRetentionPeriod=1, ApplyImmediately=True)
    assert only_failure(cli) == ("rds", "arbiter-db: backup retention is 1 day(s) (expected at least 7)")


def test_rds_storage_not_encrypted(sandbox, cli) -> None:
    rds = sandbox_client(sandbox, "rds")
    rds.delete_db_instance(DBInstanceIdentifier="arbiter-db", SkipFinalSnapshot=True)
    rds.create_db_instance(
        DBInstanceIdentifier="arbiter-db",
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        EngineVersion="16.3",
        MasterUsername="arbiter",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
        BackupRetentionPeriod=7,
        StorageEncrypted=False,
    )
    assert only_failure(cli) == ("rds", "arbiter-db: storage is not encrypted")


def test_redis_cluster_being_deleted(sandbox, cli) -> None:
    sandbox_client(sandbox, "elasticache").delete_cache_cluster(CacheClusterId="arbiter-redis")
    assert only_failure(cli) == ("redis", "arbiter-redis: status is deleting (expected available)")


# -- ECS services and images -----------------------------------------------------------------------
def test_service_running_fewer_tasks_than_desired(sandbox, cli) -> None:
    sandbox.aws.ecs.set_progress("timed", step_seconds=3600)  # ECS does not replace the task during the test
    ecs = sandbox_client(sandbox, "ecs")
    task = ecs.list_tasks(cluster=CLUSTER, serviceName="backend")["taskArns"][0]
    ecs.stop_task(cluster=CLUSTER, task=task, reason="a crashed container")
    check_id, detail = only_failure(cli)
    assert check_id == "ecs-services" and "backend: running 1 of desired 2" in detail


def test_service_with_a_rollout_that_does_not_finish(sandbox, cli) -> None:
    sandbox.aws.ecs.fail_next_deployment("frontend", count=5)
    sandbox_client(sandbox, "ecs").update_service(cluster=CLUSTER, service="frontend", forceNewDeployment=True)
    check_id, detail = only_failure(cli)
    assert check_id == "ecs-services" and detail.startswith("frontend: 2 deployments, the newest IN_PROGRESS")


def test_deployed_image_tag_missing_from_ecr(sandbox, cli) -> None:
    sandbox_client(sandbox, "ecr").batch_delete_image(
        repositoryName="arbiter-ai/backend", imageIds=[{"imageTag": "v1"}]
    )
    assert only_failure(cli) == ("images", "backend runs arbiter-ai/backend:v1, which is not in ECR")


# -- the ALB, its certificate, DNS ---------------------------------------------------------------------
def _https_listener(sandbox: Any) -> dict[str, Any]:
    elbv2 = sandbox_client(sandbox, "elbv2")
    lb = elbv2.describe_load_balancers(Names=["arbiter-alb"])["LoadBalancers"][0]
    listeners = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    return next(li for li in listeners if li["Protocol"] == "HTTPS")


def test_api_rule_removed(sandbox, cli) -> None:
    elbv2 = sandbox_client(sandbox, "elbv2")
    rules = elbv2.describe_rules(ListenerArn=_https_listener(sandbox)["ListenerArn"])["Rules"]
    (api_rule,) = [r for r in rules if not r["IsDefault"]]
    elbv2.delete_rule(RuleArn=api_rule["RuleArn"])
    check_id, detail = only_failure(cli)
    assert check_id == "alb-routing"
    assert "no rule routes /api/* to arbiter-backend-tg: the default action sends it to arbiter-frontend-tg" in detail


def test_api_rule_pointing_at_the_frontend(sandbox, cli) -> None:
    elbv2 = sandbox_client(sandbox, "elbv2")
    listener = _https_listener(sandbox)
    rules = elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
    (api_rule,) = [r for r in rules if not r["IsDefault"]]
    frontend_tg = listener["DefaultActions"][0]["TargetGroupArn"]
    elbv2.modify_rule(RuleArn=api_rule["RuleArn"], Actions=[{"Type": "forward", "TargetGroupArn": frontend_tg}])
    check_id, detail = only_failure(cli)
    assert check_id == "alb-routing"
    assert "/api/* goes to arbiter-frontend-tg (rule priority 10), not to the backend target group" in detail


def test_certificate_deleted(sandbox, cli) -> None:
    acm = sandbox_client(sandbox, "acm")
    for cert in acm.list_certificates()["CertificateSummaryList"]:
        acm.delete_certificate(CertificateArn=cert["CertificateArn"])
    check_id, detail = only_failure(cli)
    assert (check_id, detail) == (
        "certificate",
        "no ACM certificate in us-east-1 covers arbiter-ai.com and *.arbiter-ai.com",
    )


def test_certificate_not_attached_to_the_https_listener(sandbox, cli) -> None:
    acm = sandbox_client(sandbox, "acm")
    other = acm.request_certificate(DomainName="other.example.com", ValidationMethod="DNS")["CertificateArn"]
    listener = _https_listener(sandbox)
    sandbox_client(sandbox, "elbv2").modify_listener(
        ListenerArn=listener["ListenerArn"], Certificates=[{"CertificateArn": other}]
    )
    check_id, detail = only_failure(cli)
    assert check_id == "certificate" and "is not attached to the HTTPS listener of arbiter-alb" in detail
    assert other.rsplit("/", 1)[-1] in detail  # what it serves instead


def _point_a_record(sandbox: Any, dns_name: str, zone_id: str) -> None:
    route53 = sandbox_client(sandbox, "route53")
    zone = route53.list_hosted_zones_by_name(DNSName="arbiter-ai.com")["HostedZones"][0]["Id"]
    alias = {"HostedZoneId": zone_id, "DNSName": dns_name, "EvaluateTargetHealth": False}
    change = {"Action": "UPSERT", "ResourceRecordSet": {"Name": "arbiter-ai.com", "Type": "A", "AliasTarget": alias}}
    route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [change]})


def test_a_record_pointing_elsewhere(sandbox, cli) -> None:
    _point_a_record(sandbox, "old-alb-42.us-east-1.elb.amazonaws.com", "Z35SXDOTRQ7X7K")
    check_id, detail = only_failure(cli)
    assert check_id == "dns"
    assert detail.startswith("the A alias of arbiter-ai.com points at old-alb-42.us-east-1.elb.amazonaws.com, not at")


def test_a_record_through_cloudfront_in_front_of_the_alb_passes(sandbox, cli) -> None:
    cloudfront = sandbox_client(sandbox, "cloudfront")
    (dist,) = cloudfront.list_distributions()["DistributionList"]["Items"]
    _point_a_record(sandbox, dist["DomainName"], "Z2FDTNDATAQYW2")
    result, checks = smoke(cli, "--only", "dns")
    assert result.code == 0 and checks["dns"]["detail"].endswith(f"CloudFront {dist['Id']} -> the ALB arbiter-alb")


# -- secrets, migrations, the Stripe webhook ----------------------------------------------------------
def test_secret_key_missing(sandbox, cli) -> None:
    sm = sandbox_client(sandbox, "secretsmanager")
    payload = json.loads(sm.get_secret_value(SecretId="arbiter-ai/local")["SecretString"])
    del payload["STRIPE_PRICE_ID"]
    sm.put_secret_value(SecretId="arbiter-ai/local", SecretString=json.dumps(payload))
    check_id, detail = only_failure(cli)
    assert check_id == "secrets" and detail.startswith("check-secrets: 1 error(s): missing-key:")
    assert "STRIPE_PRICE_ID" in detail


def _run_migration_task(sandbox: Any, exit_code: int) -> None:
    ecs = sandbox_client(sandbox, "ecs")
    service = ecs.describe_services(cluster=CLUSTER, services=["backend"])["services"][0]
    sandbox.aws.ecs.task_outcome(command_contains="alembic", exit_code=exit_code)
    task = ecs.run_task(
        cluster=CLUSTER,
        taskDefinition=service["taskDefinition"],
        startedBy="arbiter-ops/migrate",
        launchType="FARGATE",
        networkConfiguration=service["networkConfiguration"],
        overrides={"containerOverrides": [{"name": "backend", "command": ["alembic", "upgrade", "head"]}]},
    )["tasks"][0]["taskArn"]
    for _ in range(50):  # the overlay advances one step per DescribeTasks
        if ecs.describe_tasks(cluster=CLUSTER, tasks=[task])["tasks"][0]["lastStatus"] == "STOPPED":
            return
    raise AssertionError("the migration task never stopped")


def test_last_migration_task_exited_1(sandbox, cli) -> None:
    _run_migration_task(sandbox, exit_code=1)
    check_id, detail = only_failure(cli)
    assert check_id == "migrations" and detail.startswith("the last migration task ") and "exited 1" in detail


def test_last_migration_task_exited_0_passes(sandbox, cli) -> None:
    _run_migration_task(sandbox, exit_code=0)
    result, checks = smoke(cli, "--only", "migrations")
    assert (
        result.code == 0 and checks["migrations"]["status"] == "pass" and "exited 0" in checks["migrations"]["detail"]
    )


def test_migration_audit_record_is_read_first(sandbox, cli) -> None:
    from arbiter_ops.state.audit import record

    _run_migration_task(sandbox, exit_code=0)  # older evidence; the durable record wins
    record(local_ctx(), "migrate", {"ok": False, "exit_code": 1, "image_tag": "v2", "reason": "the migration exited 1"})
    check_id, detail = only_failure(cli)
    assert check_id == "migrations" and "image v2" in detail and "exited 1" in detail


def test_webhook_endpoint_disabled(sandbox, cli) -> None:
    (endpoint,) = sandbox.stripe.endpoints()
    request = urllib.request.Request(
        f"{sandbox.endpoints.stripe_api_base}/v1/webhook_endpoints/{endpoint['id']}",
        data=urllib.parse.urlencode({"disabled": "true"}).encode(),
        headers={"Authorization": f"Bearer {sandbox.stripe_key}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert json.loads(resp.read())["status"] == "disabled"
    check_id, detail = only_failure(cli)
    assert check_id == "stripe-webhook" and "disabled" in detail
