"""`push [SERVICE...]`: the guide's Step 2 (ECR login, build, tag, push), with an immutable tag.

Read first, change later: the tag, the repositories and the images already in ECR are looked at before
anything is touched, so a refused push (dirty tree, missing repository with --no-create, --force on an
IMMUTABLE repository) changes nothing, and a tag already in ECR builds and pushes nothing at all.
Then: the engine is checked, ECR's authorization token logs docker in (password on stdin, into a private
DOCKER_CONFIG), missing repositories are created, images are built one after another and pushed
concurrently (or `docker buildx build --push` when buildx is there), and each pushed digest is reported.
"""

from __future__ import annotations

import base64
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arbiter_ops.commands import option
from arbiter_ops.core.errors import ConfigError, ExternalError, OpsError, Refused, UsageError
from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.core.config import ServiceConfig
    from arbiter_ops.core.context import Context

MAX_CONCURRENT_PUSHES = 4
BUILD_TIMEOUT = 1800.0
PUSH_TIMEOUT = 900.0
IMMUTABLE = ("IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION")
_PUSH_FAILURES = ("failed to push", "unexpected status", "unauthorized", "denied", "connection refused")


@dataclass
class Plan:
    service: str
    cfg: ServiceConfig
    repository: str
    tag: str
    repo_exists: bool
    action: str = "push"  # push | skipped (then pushed | failed | not-attempted)
    digest: str | None = None
    error: OpsError | None = None
    context: str = ""
    dockerfile: str = ""

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "service": self.service,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "action": self.action,
        }
        if self.error is not None:
            doc["error"] = {"code": self.error.code, "message": self.error.line()}
        return doc


@dataclass(frozen=True)
class PushOptions:
    services: list[str] = option(list, "Services to push (default: all).")
    tag: str | None = option(None, "Image tag (default: the short git SHA; --image-tag as in deploy).")
    allow_dirty: bool = option(False, "Push even with uncommitted changes.")
    force: bool = option(False, "Rebuild and push a tag already in ECR (refused by IMMUTABLE repositories).")
    no_create: bool = option(False, "Fail instead of creating a missing ECR repository.")


def run(ctx: Context, opts: PushOptions) -> int:
    services, tag, allow_dirty, force, no_create = opts.services, opts.tag, opts.allow_dirty, opts.force, opts.no_create
    names = services or [n for n, c in ctx.config.services.items() if not c.image_of]  # worker, beat: the backend's
    configs = {name: ctx.config.service(name) for name in names}  # an unknown service: exit 2 first
    shared = [f"{n} runs the image of {c.image_of}" for n, c in configs.items() if c.image_of]
    if shared:
        raise UsageError(f"nothing to build for {'; '.join(shared)}", hint="push that service instead")
    project = project_dir(ctx)
    image_tag = resolve_tag(ctx, project, tag, allow_dirty)
    plans = [plan_service(ctx, name, cfg, image_tag, force=force, no_create=no_create) for name, cfg in configs.items()]
    todo = [p for p in plans if p.action == "push"]
    for plan in todo:
        plan.context, plan.dockerfile = build_paths(project, plan.service, plan.cfg)
    registry = None
    if todo:
        ctx.confirm_production(f"push {len(todo)} image(s) tagged {image_tag}")
        registry = execute(ctx, todo)
    return report(ctx, plans, image_tag, registry)


# -- reading: tag, repositories, images ---------------------------------------------------------
def project_dir(ctx: Context) -> Path:
    """Build contexts are relative to the config file's directory (else the current directory)."""
    source = ctx.config.source
    return Path(source).resolve().parent if source != "built-in defaults" else Path.cwd()


def dirty_paths(project: Path) -> list[str] | None:
    """Uncommitted changes (untracked files too: they go into a build context); None outside a git tree."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return [line[3:] for line in out.stdout.splitlines() if line.strip()]


def resolve_tag(ctx: Context, project: Path, tag: str | None, allow_dirty: bool) -> str:
    """--tag, else the short git SHA; a dirty work tree is refused unless --allow-dirty."""
    from arbiter_ops.core.context import git_short_sha
    from arbiter_ops.ecs.taskdef import check_image_tag

    if tag is not None:
        check_image_tag(tag)  # bad input (exit 2) before anything else
    dirty = dirty_paths(project)
    if dirty and not allow_dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise Refused(
            f"the work tree {project} has uncommitted changes ({shown}): the image would not be the commit "
            "its tag names",
            hint="commit or stash them, or pass --allow-dirty",
            code="dirty-work-tree",
        )
    if tag is not None:
        return tag
    try:
        sha = git_short_sha(str(project))
    except OpsError:
        raise UsageError(
            f"no --tag given and {project} is not a git work tree with a commit", hint="pass --tag TAG"
        ) from None
    if dirty:
        # Never the clean commit's tag: with IMMUTABLE tags, a dirty image under it could never be replaced.
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        ctx.output.warn(f"pushing uncommitted changes (--allow-dirty): tag {sha}-dirty-{stamp}, not {sha}")
        return check_image_tag(f"{sha}-dirty-{stamp}")
    return check_image_tag(sha)


def repository_mutability(ctx: Context, repository: str) -> str | None:
    """The repository's imageTagMutability, or None when it does not exist."""
    from botocore.exceptions import ClientError

    from arbiter_ops.core.aws import call, error_code

    try:
        resp = call(ctx.client("ecr").describe_repositories, repositoryNames=[repository])
    except ClientError as exc:
        if error_code(exc) == "RepositoryNotFoundException":
            return None
        raise
    return str(resp["repositories"][0].get("imageTagMutability") or "MUTABLE")


def plan_service(ctx: Context, service: str, cfg: ServiceConfig, tag: str, *, force: bool, no_create: bool) -> Plan:
    from arbiter_ops.images.ecr import find_image

    repository = cfg.ecr_repository
    mutability = repository_mutability(ctx, repository)
    plan = Plan(service, cfg, repository, tag, repo_exists=mutability is not None)
    if mutability is None:
        if no_create:
            raise Refused(
                f"the ECR repository {repository} does not exist (--no-create)",
                hint="run `arbiter-ops bootstrap`, or push without --no-create to create it (IMMUTABLE tags, "
                "scan on push)",
                code="repository-not-found",
            )
        return plan
    existing = find_image(ctx, repository, tag)
    if existing is None:
        return plan
    if not force:
        plan.action, plan.digest = "skipped", existing.get("imageDigest")
        ctx.output.info(f"{service}: {repository}:{tag} is already in ECR ({plan.digest}); nothing to build")
        return plan
    if mutability in IMMUTABLE:
        raise Refused(
            f"--force cannot replace {repository}:{tag}: the repository has IMMUTABLE tags, so ECR refuses to "
            "move a tag once pushed (that is what makes a tag name one image for ever)",
            hint="push under a new tag (commit, or --tag), then deploy that tag",
            code="immutable-tag",
        )
    return plan


def build_paths(project: Path, service: str, cfg: ServiceConfig) -> tuple[str, str]:
    context = (project / cfg.context).resolve()
    dockerfile = Path(cfg.dockerfile) if Path(cfg.dockerfile).is_absolute() else context / cfg.dockerfile
    if not context.is_dir():
        raise ConfigError(f"build context of {service} not found: {context}", hint=f"set [services.{service}] context")
    if not dockerfile.is_file():
        raise ConfigError(
            f"Dockerfile of {service} not found: {dockerfile}", hint=f"set [services.{service}] dockerfile"
        )
    return str(context), str(dockerfile)


# -- changing: login, repositories, build, push ------------------------------------------------
def login(ctx: Context, config_dir: str) -> str:
    """ECR's authorization token -> docker login (password on stdin); returns the registry host."""
    from arbiter_ops.core.aws import call
    from arbiter_ops.core.redact import REDACTOR
    from arbiter_ops.images import docker

    data = call(ctx.client("ecr").get_authorization_token)["authorizationData"][0]
    token = str(data["authorizationToken"])
    REDACTOR.add(token)
    username, _, password = base64.b64decode(token).decode("utf-8").partition(":")
    REDACTOR.add(password)  # registered before it can reach any message
    registry = docker.registry_host(str(data["proxyEndpoint"]))
    ctx.output.info(f"logging in to {registry} as {username}")
    docker.run_docker(docker.login_argv(registry, username), input=password, timeout=60, config_dir=config_dir)
    return registry


def create_repository(ctx: Context, repository: str) -> None:
    from arbiter_ops.core.aws import call

    call(
        ctx.client("ecr").create_repository,
        repositoryName=repository,
        imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
    )
    ctx.output.info(f"created ECR repository {repository} (IMMUTABLE tags, scan on push)")


def execute(ctx: Context, todo: list[Plan]) -> str:
    from arbiter_ops.images import docker

    out = ctx.output
    with docker.private_config() as config_dir:
        engine = docker.run_docker(docker.version_argv(), timeout=30, config_dir=config_dir).output.strip()
        out.detail(f"Docker engine {engine.splitlines()[-1] if engine else '?'} at {docker.docker_host()}")
        registry = login(ctx, config_dir)
        for plan in todo:
            if not plan.repo_exists:
                create_repository(ctx, plan.repository)
        buildx = docker.run_docker(docker.buildx_available_argv(), timeout=30, config_dir=config_dir, check=False)
        if buildx.code == 0:
            out.detail("buildx is available: docker buildx build --push")
            for plan in todo:
                _guard(plan, lambda p=plan: _buildx(ctx, p, registry, config_dir))
        else:
            _build_then_push(ctx, todo, registry, config_dir)
    return registry


def _guard(plan: Plan, step: Any) -> bool:
    try:
        step()
        return True
    except OpsError as exc:
        plan.action, plan.error = "failed", exc
        return False


def _build_then_push(ctx: Context, todo: list[Plan], registry: str, config_dir: str) -> None:
    """Builds one after another (they share the engine's CPU); each push starts as soon as its build is done."""
    pushes: list[tuple[Plan, Future[None]]] = []
    with ThreadPoolExecutor(max_workers=min(MAX_CONCURRENT_PUSHES, len(todo)), thread_name_prefix="push") as pool:
        for i, plan in enumerate(todo):
            if not _guard(plan, lambda p=plan: _build(ctx, p, registry, config_dir)):
                if plan.error is not None and plan.error.code != "build-failed":
                    for rest in todo[i + 1 :]:  # the engine itself failed: the next builds would too
                        rest.action = "not-attempted"
                    break
                continue
            pushes.append((plan, pool.submit(_push, ctx, plan, registry, config_dir)))
        for plan, future in pushes:
            try:
                future.result()
            except OpsError as exc:
                plan.action, plan.error = "failed", exc


def _say(ctx: Context, plan: Plan, verb: str) -> Any:
    return {
        "on_line": lambda line: ctx.output.detail(f"  {plan.service}: {line}"),
        "heartbeat": lambda s: ctx.output.info(f"{plan.service}: still {verb} ({s:.0f} s)"),
    }


def _build(ctx: Context, plan: Plan, registry: str, config_dir: str) -> None:
    from arbiter_ops.images import docker

    image = docker.image_ref(registry, plan.repository, plan.tag)
    argv = docker.build_argv(
        image, plan.context, plan.dockerfile, platform=plan.cfg.platform, build_args=plan.cfg.build_args
    )
    ctx.output.info(f"{plan.service}: building {image} ({plan.cfg.platform})")
    ctx.output.detail(docker.display(argv), level=2)
    started = time.monotonic()
    result = docker.run_docker(
        argv, timeout=BUILD_TIMEOUT, config_dir=config_dir, check=False, **_say(ctx, plan, "building")
    )
    if result.code != 0:
        raise Refused(
            f"docker build of {plan.service} failed (exit {result.code}): {result.tail(3)}",
            hint=f"fix {plan.dockerfile} or its context; -v shows the whole build output",
            code="build-failed",
        )
    ctx.output.info(f"{plan.service}: built in {time.monotonic() - started:.1f} s; pushing")


def _push(ctx: Context, plan: Plan, registry: str, config_dir: str) -> None:
    from arbiter_ops.images import docker
    from arbiter_ops.images.ecr import find_image

    image = docker.image_ref(registry, plan.repository, plan.tag)
    started = time.monotonic()
    result = docker.run_docker(
        docker.push_argv(image), timeout=PUSH_TIMEOUT, config_dir=config_dir, **_say(ctx, plan, "pushing")
    )
    digest = docker.push_digest(result.output, plan.tag)
    if digest is None:  # an older client or a quiet registry: ask the engine, then ECR
        inspected = docker.run_docker(
            docker.inspect_digests_argv(image), timeout=30, config_dir=config_dir, check=False
        )
        digest = docker.repo_digest(inspected.output, registry, plan.repository)
    if digest is None:
        digest = (find_image(ctx, plan.repository, plan.tag) or {}).get("imageDigest")
    plan.action, plan.digest = "pushed", digest
    ctx.output.info(
        f"{plan.service}: pushed {image} {digest or '(digest unknown)'} in {time.monotonic() - started:.1f} s"
    )


def _buildx(ctx: Context, plan: Plan, registry: str, config_dir: str) -> None:
    from arbiter_ops.images import docker
    from arbiter_ops.images.ecr import find_image

    image = docker.image_ref(registry, plan.repository, plan.tag)
    metadata = Path(config_dir) / f"{plan.service}-metadata.json"
    argv = docker.buildx_build_push_argv(
        image,
        plan.context,
        plan.dockerfile,
        metadata_file=str(metadata),
        platform=plan.cfg.platform,
        build_args=plan.cfg.build_args,
    )
    ctx.output.info(f"{plan.service}: building and pushing {image} ({plan.cfg.platform}, buildx)")
    started = time.monotonic()
    result = docker.run_docker(
        argv, timeout=BUILD_TIMEOUT, config_dir=config_dir, check=False, **_say(ctx, plan, "building")
    )
    if result.code != 0:
        message = f"docker buildx build of {plan.service} failed (exit {result.code}): {result.tail(3)}"
        if any(marker in result.tail(5).lower() for marker in _PUSH_FAILURES):  # built, but the registry said no
            raise ExternalError(message, hint="check the registry and the network to it", code="push-failed")
        raise Refused(message, hint="-v shows the whole build output", code="build-failed")
    digest = docker.buildx_digest(metadata.read_text(encoding="utf-8")) if metadata.is_file() else None
    plan.action, plan.digest = "pushed", digest or (find_image(ctx, plan.repository, plan.tag) or {}).get("imageDigest")
    ctx.output.info(f"{plan.service}: pushed {image} {plan.digest} in {time.monotonic() - started:.1f} s")


# -- reporting --------------------------------------------------------------------------------------
def report(ctx: Context, plans: list[Plan], tag: str, registry: str | None) -> int:
    failed = [p for p in plans if p.error is not None]
    ok = not failed and all(p.action in ("pushed", "skipped") for p in plans)
    exit_code = max((p.error.exit_code for p in failed if p.error), default=0 if ok else 3)
    out = ctx.output
    for plan in failed:
        out.error_line(f"{plan.service}: {plan.error.line() if plan.error else ''}")
        out.annotate("error", f"arbiter-ops push {plan.service}", plan.error.line() if plan.error else "")
    rows = [(p.service, f"`{p.repository}:{p.tag}`", p.action, f"`{p.digest or '-'}`") for p in plans]
    out.summary(f"arbiter-ops push: {ctx.env_name}", ("Service", "Image", "Action", "Digest"), rows, table=False)

    def text() -> None:
        # One line per image, never truncated: the digest is what a person copies into a deploy.
        width = max(len(p.service) for p in plans)
        for p in plans:
            line = f"{p.service:<{width}}  {p.action:<8}  {p.repository}:{p.tag}  {p.digest or '-'}"
            out.human.print(out.redact(line), markup=False)

    document = {"tag": tag, "registry": registry, "images": [p.as_json() for p in plans]}
    return finish(ctx, document, ok, text=text, exit_code=exit_code)
