"""Seed the sandbox with the guide's infrastructure (contract, "The local environment").

Everything is created over HTTP with plain boto3, as a user's script would, so the seed is also a
living example of the guide's Steps 1-6. The task definitions are rendered by arbiter-ops itself (image
tag `v1`), so a later `deploy --image-tag v2` changes exactly the images.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets as pysecrets
from dataclasses import dataclass
from typing import Any

from arbiter_ops.core.config import Config
from arbiter_ops.ecs.taskdef import RenderInputs, render
from arbiter_ops.state.table import create_table_request, ttl_request

ACCOUNT_ID = "123456789012"
SEED_TAGS = ("v1", "v2")
LOCAL_APP_URL = "http://localhost:3000"  # the guide's local NEXTAUTH_URL / origin


@dataclass
class SeedInputs:
    endpoint_url: str
    region: str
    stripe_api_base: str
    stripe_key: str
    app_base_url: str  # where the Arbiter API stand-in answers
    database_url: str  # postgresql:// of the real PostgreSQL 16 + pgvector
    nextauth_secret: str


@dataclass(frozen=True)
class Infra:
    """What the network, databases, certificate, load balancer, CDN and DNS of the seed left for the rest."""

    subnets: list[str]
    ecs_sg: str
    alb_dns: str
    target_groups: dict[str, str]


# The moto backends (BackendDict.service_name) of the infrastructure part, and the signing names (credential scopes)
# their requests carry. A reset keeps them while no request wrote to them since the seed (runtime.LocalSandbox).
INFRA_BACKENDS = frozenset({"ec2", "rds", "elasticache", "acm", "elbv2", "cloudfront", "route53"})
INFRA_SCOPES = frozenset({"ec2", "rds", "elasticache", "acm", "elasticloadbalancing", "cloudfront", "route53"})


@dataclass
class Seeded:
    secret_arn: str
    webhook_endpoint_id: str
    webhook_secret: str
    task_definitions: dict[str, str]
    alb_dns: str
    target_groups: dict[str, str]
    infra: Infra


@functools.lru_cache(maxsize=64)
def boto_client(service: str, endpoint_url: str, region: str) -> Any:
    """Cached: a reset reseeds in milliseconds instead of paying for client creation again."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def fake_manifest(repository: str, tag: str) -> str:
    """A Docker v2 schema 2 manifest whose digests are stable per (repository, tag)."""

    def digest(label: str) -> str:
        return "sha256:" + hashlib.sha256(f"{repository}:{tag}:{label}".encode()).hexdigest()

    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1469,
                "digest": digest("config"),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 3208942,
                    "digest": digest("layer"),
                }
            ],
        }
    )


def sandbox_secret_payload(inputs: SeedInputs, webhook_secret: str) -> dict[str, str]:
    """Every key of the guide's Step 1d plus what the templates reference, with sandbox-safe values."""
    pg = inputs.database_url  # postgresql://user:@/db?host=/socket/dir
    return {
        "DATABASE_URL": pg.replace("postgresql://", "postgresql+asyncpg://", 1),
        "FRONTEND_DATABASE_URL": pg,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "APP_MODE": "sandbox",
        "LLM_PROVIDER": "bedrock",
        "EMBEDDING_PROVIDER": "bedrock",
        "VECTOR_STORE_PROVIDER": "pgvector",
        "AWS_REGION": inputs.region,
        "NEXTAUTH_SECRET": inputs.nextauth_secret,
        "STRIPE_SECRET_KEY": inputs.stripe_key,
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        "STRIPE_PRICE_ID": "price_1SandboxArbiterStarter",
        "ALLOWED_ORIGINS": LOCAL_APP_URL,
        "APP_BASE_URL": LOCAL_APP_URL,
        "TRUSTED_PROXY_HOPS": "1",
        "APP_ENV": "development",
        "LOG_LEVEL": "INFO",
    }


def seed(
    inputs: SeedInputs, config: Config, stripe_webhook: tuple[str, str], infra: Infra | None = None
) -> Seeded:
    """Create the guide's infrastructure (``infra``: reuse what an earlier seed left of it) and the application's
    resources. ``stripe_webhook`` is (endpoint id, signing secret)."""
    c = lambda name: boto_client(name, inputs.endpoint_url, inputs.region)  # noqa: E731
    ecs, ecr = c("ecs"), c("ecr")
    infra = infra or seed_infra(inputs, config)
    subnets, ecs_sg, target_groups = infra.subnets, infra.ecs_sg, infra.target_groups

    # Step 1a: ECR repositories holding v1 and v2 (one per repository: the worker and beat run the backend's).
    for repository in dict.fromkeys(s.ecr_repository for s in config.services.values()):
        ecr.create_repository(
            repositoryName=repository,
            imageTagMutability="IMMUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
        )
        for tag in SEED_TAGS:
            ecr.put_image(
                repositoryName=repository,
                imageManifest=fake_manifest(repository, tag),
                imageManifestMediaType="application/vnd.docker.distribution.manifest.v2+json",
                imageTag=tag,
            )

    # Step 1d / Step 6: the secret, with the webhook's signing secret already stored.
    endpoint_id, webhook_secret = stripe_webhook
    secret_arn = c("secretsmanager").create_secret(
        Name=config.secret_id("local"),
        SecretString=json.dumps(sandbox_secret_payload(inputs, webhook_secret)),
    )["ARN"]

    # What `arbiter-ops bootstrap` creates: the lock / audit table.
    c("dynamodb").create_table(**create_table_request(config.state_table))
    c("dynamodb").update_time_to_live(**ttl_request(config.state_table))

    # Log groups the task definitions write to.
    logs = c("logs")
    for service in config.services.values():
        logs.create_log_group(logGroupName=service.log_group or f"/ecs/{service.family}")

    # Step 3: cluster, task definitions (rendered by arbiter-ops with v1), services with the circuit breaker.
    cluster = config.environment("local").cluster
    ecs.create_cluster(clusterName=cluster, capacityProviders=["FARGATE"])
    task_definitions = {}
    for name, service in config.services.items():
        td = _rendered_v1(config.model_dump_json(), name, inputs.region)
        arn = ecs.register_task_definition(**td)["taskDefinition"]["taskDefinitionArn"]
        task_definitions[name] = arn
        ecs.create_service(
            cluster=cluster,
            serviceName=service.ecs_service,
            taskDefinition=arn,
            desiredCount=service.desired_count,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": subnets, "securityGroups": [ecs_sg], "assignPublicIp": "DISABLED"}
            },
            loadBalancers=[{"targetGroupArn": tg, "containerName": service.container, "containerPort": service.port}]
            if (tg := target_groups.get(name))
            else [],
            # A scheduler must never run twice: its old task stops before the new one starts (100 / 0).
            deploymentConfiguration={
                "deploymentCircuitBreaker": {"enable": True, "rollback": True},
                "maximumPercent": 100 if service.singleton else 200,
                "minimumHealthyPercent": 0 if service.singleton else 100,
            },
        )
    return Seeded(
        secret_arn=secret_arn,
        webhook_endpoint_id=endpoint_id,
        webhook_secret=webhook_secret,
        task_definitions=task_definitions,
        alb_dns=infra.alb_dns,
        target_groups=target_groups,
        infra=infra,
    )


def seed_infra(inputs: SeedInputs, config: Config) -> Infra:
    """The network, RDS, ElastiCache, certificate, ALB with its target groups and listeners, CloudFront, DNS."""
    c = lambda name: boto_client(name, inputs.endpoint_url, inputs.region)  # noqa: E731
    ec2, elbv2 = c("ec2"), c("elbv2")

    # Network (Step 3 / 4 prerequisites).
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{inputs.region}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in ((1, "a"), (2, "b"))
    ]
    alb_sg = ec2.create_security_group(GroupName="arbiter-alb", Description="ALB", VpcId=vpc)["GroupId"]
    ecs_sg = ec2.create_security_group(GroupName="arbiter-ecs", Description="ECS tasks", VpcId=vpc)["GroupId"]

    # Step 1b / 1c: RDS PostgreSQL 16 and ElastiCache Redis.
    c("rds").create_db_instance(
        DBInstanceIdentifier=config.rds_instance,
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        EngineVersion="16.3",
        MasterUsername="arbiter",
        MasterUserPassword=pysecrets.token_urlsafe(18),
        AllocatedStorage=20,
        DBName="arbiter",
        BackupRetentionPeriod=7,
        MultiAZ=False,
        StorageEncrypted=True,
        VpcSecurityGroupIds=[ecs_sg],
    )
    c("elasticache").create_cache_cluster(
        CacheClusterId=config.redis_cluster,
        CacheNodeType="cache.t4g.micro",
        Engine="redis",
        EngineVersion="7.0",
        NumCacheNodes=1,
    )

    # Step 4: certificate, ALB, target groups, HTTPS listener with the /api/* rule, DNS.
    domain = config.domain_of("local")
    acm = c("acm")
    cert_arn = acm.request_certificate(
        DomainName=domain, SubjectAlternativeNames=[domain, f"*.{domain}"], ValidationMethod="DNS"
    )["CertificateArn"]
    alb = elbv2.create_load_balancer(
        Name="arbiter-alb", Subnets=subnets, SecurityGroups=[alb_sg], Scheme="internet-facing", Type="application"
    )["LoadBalancers"][0]
    target_groups = {}
    for name, service in config.services.items():
        if service.port is None:  # a worker or scheduler is not behind the ALB (gndumbri/arbiter-ai ecs.tf)
            continue
        target_groups[name] = elbv2.create_target_group(
            Name=f"arbiter-{name}-tg",
            Protocol="HTTP",
            Port=service.port,
            VpcId=vpc,
            TargetType="ip",
            HealthCheckPath=service.health_check_path,
        )["TargetGroups"][0]["TargetGroupArn"]
    listener = elbv2.create_listener(
        LoadBalancerArn=alb["LoadBalancerArn"],
        Protocol="HTTPS",
        Port=443,
        Certificates=[{"CertificateArn": cert_arn}],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": target_groups["frontend"]}],
    )["Listeners"][0]
    elbv2.create_rule(
        ListenerArn=listener["ListenerArn"],
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": target_groups["backend"]}],
    )
    elbv2.create_listener(
        LoadBalancerArn=alb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}
        ],
    )
    _cloudfront(c("cloudfront"), alb["DNSName"], domain)
    route53 = c("route53")
    zone = route53.create_hosted_zone(Name=domain, CallerReference="arbiter-ops-seed")["HostedZone"]["Id"]
    route53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": domain,
                        "Type": "A",
                        "AliasTarget": {
                            "HostedZoneId": alb["CanonicalHostedZoneId"],
                            "DNSName": alb["DNSName"],
                            "EvaluateTargetHealth": True,
                        },
                    },
                }
            ]
        },
    )

    return Infra(subnets, ecs_sg, alb["DNSName"], target_groups)


@functools.lru_cache(maxsize=16)
def _rendered_v1(config_json: str, name: str, region: str) -> dict[str, Any]:
    config = Config.model_validate_json(config_json)
    inputs = RenderInputs(
        env_name="local",
        region=region,
        account_id=ACCOUNT_ID,
        image_tag="v1",
        base_url=config.environment("local").base_url or LOCAL_APP_URL,
    )
    return render(config, name, inputs)


def _cloudfront(cloudfront: Any, alb_dns: str, domain: str) -> None:
    cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": "arbiter-ops-seed",
            "Aliases": {"Quantity": 1, "Items": [domain]},
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "alb",
                        "DomainName": alb_dns,
                        "CustomOriginConfig": {
                            "HTTPPort": 80,
                            "HTTPSPort": 443,
                            "OriginProtocolPolicy": "https-only",
                        },
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "alb",
                "ViewerProtocolPolicy": "redirect-to-https",
                "ForwardedValues": {"QueryString": True, "Cookies": {"Forward": "all"}},
                "MinTTL": 0,
            },
            "Comment": "Arbiter AI",
            "Enabled": True,
        }
    )


def infra_alive(infra: Infra, config: Config, region: str) -> bool:
    """Whether the infrastructure of an earlier seed is still in moto's backends: they are process-wide, and another
    server of the same process (a test's plain moto, an AWS sandbox of its own) may have reset them meanwhile."""
    from moto.ec2.models import ec2_backends
    from moto.elbv2.models import elbv2_backends
    from moto.rds.models import rds_backends

    ec2 = ec2_backends[ACCOUNT_ID][region]
    subnets = {sid for per_zone in ec2.subnets.values() for sid in per_zone}
    return (
        set(infra.subnets) <= subnets
        and set(infra.target_groups.values()) <= set(elbv2_backends[ACCOUNT_ID][region].target_groups)
        and config.rds_instance in rds_backends[ACCOUNT_ID][region].databases
    )
