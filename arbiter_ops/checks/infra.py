"""Infrastructure checks of the guide's Steps 1 and 4: database, cache, services, ALB, certificate, DNS.

Describe/List calls only (`arbiter-ops bootstrap` prints the policy they need). The ALB is found from the
services themselves (their target groups' load balancer), so nothing about it needs configuring.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from arbiter_ops.checks.base import (
    CheckFailed,
    CheckRun,
    Outcome,
    failed,
    live_services,
    passed,
    skipped,
    warned,
)
from arbiter_ops.core.aws import arn_name, call, error_code
from arbiter_ops.ecs.api import list_task_arns

API_SERVICE = "backend"  # the ALB routes /api/* to it
WEB_SERVICE = "frontend"  # ... and everything else to it
API_PROBE = "/api/v1/arbiter-ops-probe"  # a path that any rule meant for /api/* matches
WEB_PROBE = "/"
POSTGRES_MAJOR = "16"
MIN_BACKUP_RETENTION_DAYS = 7
CERT_EXPIRY_WARNING = timedelta(days=30)
_KEY_TYPES = ["RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1"]


def rds(run: CheckRun) -> Outcome:
    ctx = run.ctx
    name = ctx.config.rds_instance
    from botocore.exceptions import ClientError

    try:
        resp = call(ctx.client("rds").describe_db_instances, DBInstanceIdentifier=name)
    except ClientError as exc:
        if error_code(exc) == "DBInstanceNotFound":
            return failed(f"DB instance {name} not found in {ctx.region}")
        raise
    db = resp["DBInstances"][0]
    status, engine, version = db.get("DBInstanceStatus"), db.get("Engine"), str(db.get("EngineVersion", ""))
    retention = int(db.get("BackupRetentionPeriod") or 0)
    problems = []
    if status != "available":
        problems.append(f"status is {status} (expected available)")
    if engine != "postgres":
        problems.append(f"engine is {engine} (expected postgres)")
    elif version.split(".")[0] != POSTGRES_MAJOR:
        problems.append(f"PostgreSQL {version} (expected {POSTGRES_MAJOR})")
    if not db.get("StorageEncrypted"):
        problems.append("storage is not encrypted")
    if retention < MIN_BACKUP_RETENTION_DAYS:
        problems.append(f"backup retention is {retention} day(s) (expected at least {MIN_BACKUP_RETENTION_DAYS})")
    if problems:
        return failed(f"{name}: {'; '.join(problems)}")
    return passed(f"{name}: available, PostgreSQL {version}, encrypted, backups kept {retention} days")


def redis(run: CheckRun) -> Outcome:
    ctx = run.ctx
    name = ctx.config.redis_cluster
    from botocore.exceptions import ClientError

    try:
        resp = call(ctx.client("elasticache").describe_cache_clusters, CacheClusterId=name)
    except ClientError as exc:
        if error_code(exc) == "CacheClusterNotFound":
            return failed(f"cache cluster {name} not found in {ctx.region}")
        raise
    cluster = resp["CacheClusters"][0]
    status, engine = cluster.get("CacheClusterStatus"), cluster.get("Engine")
    problems = []
    if status != "available":
        problems.append(f"status is {status} (expected available)")
    if engine != "redis":
        problems.append(f"engine is {engine} (expected redis)")
    if problems:
        return failed(f"{name}: {'; '.join(problems)}")
    return passed(f"{name}: available, redis {cluster.get('EngineVersion', '?')}")


def ecs_services(run: CheckRun) -> Outcome:
    ctx = run.ctx
    live = live_services(run)
    problems, notes, states = [], [], []
    for name, cfg in ctx.config.services.items():
        service = live.get(name)
        if service is None:
            problems.append(f"{cfg.ecs_service}: not found in cluster {ctx.env.cluster}")
            continue
        deployments = service.get("deployments") or []
        primary = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
        running, desired = int(service.get("runningCount", 0)), int(service.get("desiredCount", 0))
        if service.get("status") != "ACTIVE":
            problems.append(f"{cfg.ecs_service}: status {service.get('status')}")
        if len(deployments) != 1:
            state = primary.get("rolloutState", "?")
            reason = f": {primary['rolloutStateReason']}" if primary.get("rolloutStateReason") else ""
            problems.append(
                f"{cfg.ecs_service}: {len(deployments)} deployments, the newest {state}{reason} "
                f"(running {primary.get('runningCount', 0)} of {primary.get('desiredCount', desired)})"
            )
        elif running != desired:
            pending = int(service.get("pendingCount", 0))
            problems.append(f"{cfg.ecs_service}: running {running} of desired {desired} ({pending} pending)")
        elif desired == 0:
            notes.append(f"{cfg.ecs_service}: desired count is 0, nothing serves")
        revision = arn_name(str(service.get("taskDefinition", "")))
        states.append(f"{cfg.ecs_service} {running}/{desired} ({revision})")
    if problems:
        return failed("; ".join(problems))
    if notes:
        return warned("; ".join(notes))
    return passed(", ".join(states))


def beat_singleton(run: CheckRun) -> Outcome:
    """A scheduler runs once: with two tasks of a singleton service (the real app's Celery beat, its own ECS
    service in gndumbri/arbiter-ai infra/terraform/ecs.tf), every scheduled job runs twice."""
    ctx = run.ctx
    singles = {name: cfg for name, cfg in ctx.config.services.items() if cfg.singleton}
    if not singles:
        return skipped("no singleton service in the config (such as [services.beat] with image_of)")
    problems, states = [], []
    for name, cfg in singles.items():
        arns = list_task_arns(ctx, service_name=cfg.ecs_service)
        if len(arns) > 1:
            n = len(arns)
            problems.append(f"{cfg.ecs_service} runs {n} tasks at once: every scheduled job runs {n} times")
        config = (live_services(run).get(name) or {}).get("deploymentConfiguration") or {}
        if int(config.get("maximumPercent", 200)) > 100:
            problems.append(
                f"{cfg.ecs_service}'s deployments start a new task before the old one stops (maximumPercent "
                f"{config.get('maximumPercent', 200)}): `arbiter-ops deploy` sets 100 / 0"
            )
        states.append(f"{cfg.ecs_service}: {len(arns)} running task")
    return failed("; ".join(problems)) if problems else passed(", ".join(states))


# -- the ALB: routing, certificate, DNS ------------------------------------------------------------
@dataclass(frozen=True)
class Alb:
    arn: str
    name: str
    dns_name: str
    listener: dict[str, Any]  # the HTTPS listener
    target_groups: dict[str, str]  # service name -> target group ARN


def _target_group_name(arn: str) -> str:
    parts = arn.split("/")  # arn:...:targetgroup/NAME/ID
    return parts[1] if len(parts) >= 3 else arn


def find_alb(run: CheckRun) -> Alb:
    """The ALB in front of the services: the load balancer of the backend's target group."""

    def compute() -> Alb:
        from botocore.exceptions import ClientError

        ctx = run.ctx
        live = live_services(run)
        groups: dict[str, str] = {}
        for name in (API_SERVICE, WEB_SERVICE):
            if name not in ctx.config.services:
                continue
            service = live.get(name)
            if service is None:
                raise CheckFailed(f"the {name} service does not exist, so neither does its route through the ALB")
            arns = [lb["targetGroupArn"] for lb in service.get("loadBalancers") or [] if lb.get("targetGroupArn")]
            if not arns:
                raise CheckFailed(f"the {name} service is not registered with a load balancer target group")
            groups[name] = arns[0]
        if not groups:
            raise CheckFailed("no backend or frontend service is configured")
        elbv2 = ctx.client("elbv2")
        try:
            described = call(elbv2.describe_target_groups, TargetGroupArns=list(groups.values()))["TargetGroups"]
        except ClientError as exc:
            if error_code(exc) == "TargetGroupNotFound":
                missing = ", ".join(groups.values())
                raise CheckFailed(f"a target group of the services does not exist: {missing}") from None
            raise
        lb_arns = [arn for tg in described for arn in tg.get("LoadBalancerArns") or []]
        if not lb_arns:
            names = ", ".join(_target_group_name(a) for a in groups.values())
            raise CheckFailed(f"the target groups {names} are not used by any load balancer")
        lb = call(elbv2.describe_load_balancers, LoadBalancerArns=[lb_arns[0]])["LoadBalancers"][0]
        listeners = call(elbv2.describe_listeners, LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        https = sorted((li for li in listeners if li.get("Protocol") == "HTTPS"), key=lambda li: li.get("Port") != 443)
        if not https:
            raise CheckFailed(f"the ALB {lb['LoadBalancerName']} has no HTTPS listener")
        return Alb(lb["LoadBalancerArn"], lb["LoadBalancerName"], lb["DNSName"], https[0], groups)

    alb: Alb = run.memo("alb", compute)
    return alb


def _glob(pattern: str, text: str, ignore_case: bool = False) -> bool:
    """ALB condition wildcards: ``*`` any characters (``/`` included), ``?`` exactly one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.IGNORECASE if ignore_case else 0) is not None


def _rule_matches(rule: dict[str, Any], path: str, host: str) -> bool:
    for cond in rule.get("Conditions") or []:
        field = cond.get("Field")
        if field == "path-pattern":
            values = (cond.get("PathPatternConfig") or {}).get("Values") or cond.get("Values") or []
            if not any(_glob(v, path) for v in values):
                return False
        elif field == "host-header":
            values = (cond.get("HostHeaderConfig") or {}).get("Values") or cond.get("Values") or []
            if not any(_glob(v, host, ignore_case=True) for v in values):
                return False
        else:  # header, query string, method, source IP: an ordinary request is not assumed to match
            return False
    return True


def _destination(rule: dict[str, Any]) -> tuple[set[str], str]:
    """(target group ARNs, action type) of a rule; authenticate-* actions come first and are passed."""
    for action in sorted(rule.get("Actions") or [], key=lambda a: a.get("Order", 0)):
        kind = action.get("Type", "")
        if kind == "forward":
            weighted = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
            arns = {tg["TargetGroupArn"] for tg in weighted if tg.get("Weight", 1) > 0}
            return arns or {action.get("TargetGroupArn", "")}, kind
        if not kind.startswith("authenticate"):
            return set(), kind
    return set(), "no action"


def _route(rules: list[dict[str, Any]], path: str, host: str) -> tuple[set[str], str, str]:
    """Where the listener sends ``path``: (target groups, action type, which rule decided)."""

    def priority(rule: dict[str, Any]) -> float:
        return float("inf") if rule.get("IsDefault") else float(rule.get("Priority", "inf"))

    for rule in sorted(rules, key=priority):
        if rule.get("IsDefault") or _rule_matches(rule, path, host):
            arns, kind = _destination(rule)
            label = "the default action" if rule.get("IsDefault") else f"rule priority {rule.get('Priority')}"
            return arns, kind, label
    return set(), "no action", "no rule"


def alb_routing(run: CheckRun) -> Outcome:
    ctx = run.ctx
    alb = find_alb(run)
    elbv2 = ctx.client("elbv2")
    rules: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ListenerArn": alb.listener["ListenerArn"]}
    for _ in range(20):  # 100 rules per listener at most: a few pages
        resp = call(elbv2.describe_rules, **kwargs)
        rules += resp.get("Rules", [])
        if not resp.get("NextMarker"):
            break
        kwargs["Marker"] = resp["NextMarker"]
    listener = f"HTTPS:{alb.listener.get('Port')} listener of {alb.name}"
    problems, routes = [], []
    for service, probe, shown in ((API_SERVICE, API_PROBE, "/api/*"), (WEB_SERVICE, WEB_PROBE, "/*")):
        expected = alb.target_groups.get(service)
        if expected is None:
            continue
        arns, kind, label = _route(rules, probe, ctx.domain)
        want = _target_group_name(expected)
        if arns == {expected}:
            routes.append(f"{shown} to {want} ({label})")
            continue
        got = ", ".join(sorted(_target_group_name(a) for a in arns)) if arns else f"a {kind} action"
        if service == API_SERVICE and label == "the default action":
            problems.append(f"no rule routes /api/* to {want}: the default action sends it to {got}")
        else:
            problems.append(f"{shown} goes to {got} ({label}), not to the {service} target group {want}")
    if problems:
        return failed(f"{listener}: {'; '.join(problems)}")
    return passed(f"{listener} routes {' and '.join(routes)}")


def _covers(names: set[str], domain: str) -> bool:
    return domain in names and f"*.{domain}" in names


def certificate(run: CheckRun) -> Outcome:
    ctx = run.ctx
    domain = ctx.domain
    alb = find_alb(run)
    acm, elbv2 = ctx.client("acm"), ctx.client("elbv2")
    kwargs: dict[str, Any] = {"ListenerArn": alb.listener["ListenerArn"]}
    attached: list[str] = []
    for _ in range(20):
        resp = call(elbv2.describe_listener_certificates, **kwargs)
        attached += [c["CertificateArn"] for c in resp.get("Certificates", [])]
        if not resp.get("NextMarker"):
            break
        kwargs["Marker"] = resp["NextMarker"]
    summaries: list[dict[str, Any]] = []
    list_kwargs: dict[str, Any] = {"Includes": {"keyTypes": _KEY_TYPES}}
    for _ in range(50):
        resp = call(acm.list_certificates, **list_kwargs)
        summaries += resp.get("CertificateSummaryList", [])
        if not resp.get("NextToken"):
            break
        list_kwargs["NextToken"] = resp["NextToken"]
    candidates = [s["CertificateArn"] for s in summaries if s.get("DomainName") in (domain, f"*.{domain}")]
    covering = []
    for arn in candidates:
        cert = call(acm.describe_certificate, CertificateArn=arn)["Certificate"]
        if _covers(set(cert.get("SubjectAlternativeNames") or []) | {cert.get("DomainName")}, domain):
            covering.append(cert)
    if not covering:
        return failed(f"no ACM certificate in {ctx.region} covers {domain} and *.{domain}")
    served = [c for c in covering if c["CertificateArn"] in attached]
    if not served:
        shown = ", ".join(arn_name(a) for a in attached) or "none"
        return failed(
            f"the certificate for {domain} and *.{domain} ({arn_name(covering[0]['CertificateArn'])}) "
            f"is not attached to the HTTPS listener of {alb.name} (it serves: {shown})"
        )
    cert = next((c for c in served if c.get("Status") == "ISSUED"), served[0])
    cert_id = arn_name(cert["CertificateArn"])
    if cert.get("Status") != "ISSUED":
        return failed(f"certificate {cert_id} for {domain} is {cert.get('Status')} (expected ISSUED)")
    not_after = cert.get("NotAfter")
    if isinstance(not_after, datetime) and not_after - datetime.now(UTC) < CERT_EXPIRY_WARNING:
        return warned(f"certificate {cert_id} for {domain} expires on {not_after:%Y-%m-%d}")
    expires = f", expires {not_after:%Y-%m-%d}" if isinstance(not_after, datetime) else ""
    return passed(f"certificate {cert_id} ISSUED for {domain}, *.{domain}, attached to {alb.name}{expires}")


def _host(name: str) -> str:
    name = name.lower().rstrip(".")
    return name.removeprefix("dualstack.")


def dns(run: CheckRun) -> Outcome:
    ctx = run.ctx
    domain = ctx.domain
    route53 = ctx.client("route53")
    zones = call(route53.list_hosted_zones_by_name, DNSName=domain, MaxItems="10").get("HostedZones", [])
    zones = [z for z in zones if _host(z["Name"]) == domain]
    zones.sort(key=lambda z: bool((z.get("Config") or {}).get("PrivateZone")))  # the public zone answers users
    if not zones:
        return failed(f"no Route 53 hosted zone for {domain}")
    zone_id = arn_name(zones[0]["Id"])
    resp = call(route53.list_resource_record_sets, HostedZoneId=zone_id, StartRecordName=domain, StartRecordType="A")
    records = [r for r in resp.get("ResourceRecordSets", []) if _host(r["Name"]) == domain and r["Type"] == "A"]
    if not records:
        return failed(f"no A record for {domain} in hosted zone {zone_id}")
    record = records[0]
    if not record.get("AliasTarget"):
        count = len(record.get("ResourceRecords") or [])
        return failed(f"the A record of {domain} is not an alias: it lists {count} fixed address(es)")
    target = _host(record["AliasTarget"]["DNSName"])
    alb = find_alb(run)
    if target == _host(alb.dns_name):
        return passed(f"{domain} A alias -> the ALB {alb.name} ({target})")
    if target.endswith(".cloudfront.net"):
        return _through_cloudfront(run, domain, target, alb)
    return failed(f"the A alias of {domain} points at {target}, not at the ALB {alb.name} ({_host(alb.dns_name)})")


def _through_cloudfront(run: CheckRun, domain: str, target: str, alb: Alb) -> Outcome:
    cloudfront = run.ctx.client("cloudfront")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    for _ in range(20):
        page = call(cloudfront.list_distributions, **kwargs).get("DistributionList", {})
        items += page.get("Items") or []
        if not page.get("IsTruncated"):
            break
        kwargs["Marker"] = page["NextMarker"]
    dist = next((d for d in items if _host(d.get("DomainName", "")) == target), None)
    if dist is None:
        return failed(f"the A alias of {domain} points at {target}, no CloudFront distribution of this account")
    origins = {_host(o.get("DomainName", "")) for o in (dist.get("Origins") or {}).get("Items") or []}
    if _host(alb.dns_name) not in origins:
        return failed(
            f"the A alias of {domain} points at CloudFront {dist['Id']}, whose origin is not the ALB {alb.name}"
        )
    return passed(f"{domain} A alias -> CloudFront {dist['Id']} -> the ALB {alb.name}")
