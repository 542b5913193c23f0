"""Task definitions: render from Jinja templates, validate before AWS ever sees them, compare with live.

Validation (contract, "Validation render must do"): StrictUndefined; the result parses as JSON; botocore's
own validator accepts it as RegisterTaskDefinition input; Fargate cpu/memory, awsvpc, port and health
check consistent with the service config; no name in both `environment` and `secrets`.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arbiter_ops.core.config import fargate_memory_options, fargate_size_ok
from arbiter_ops.core.errors import TaskDefinitionInvalid, TemplateError, UsageError

if TYPE_CHECKING:
    from arbiter_ops.core.config import Config, ServiceConfig

# Fields AWS adds to a registered task definition; never part of what we compare or register.
READ_ONLY_FIELDS = (
    "taskDefinitionArn",
    "revision",
    "status",
    "registeredAt",
    "registeredBy",
    "requiresAttributes",
    "compatibilities",
    "deregisteredAt",
)


IMAGE_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def check_image_tag(tag: str) -> str:
    if not IMAGE_TAG_RE.fullmatch(tag):
        raise UsageError(
            f"malformed image tag {tag[:80]!r}{'...' if len(tag) > 80 else ''}",
            hint="a tag is 1-128 of letters, digits, '_', '.', '-', not starting with '.' or '-'",
            code="bad-image-tag",
        )
    return tag


def template_dirs(config: Config) -> list[Path]:
    """User templates next to the config file win over the packaged ones."""
    dirs: list[Path] = []
    if config.source != "built-in defaults":
        dirs.append(Path(config.source).resolve().parent / "templates")
    dirs.append(Path.cwd() / "templates")
    packaged = Path(__file__).resolve().parent.parent / "templates"  # arbiter_ops/templates in the wheel
    source_tree = Path(__file__).resolve().parent.parent.parent / "templates"  # editable install / checkout
    dirs += [packaged, source_tree]
    seen: list[Path] = []
    for d in dirs:
        if d not in seen and d.is_dir():
            seen.append(d)
    return seen


@dataclass(frozen=True)
class RenderInputs:
    env_name: str
    region: str
    account_id: str
    image_tag: str
    base_url: str | None


def image_uri(config: Config, service: ServiceConfig, inputs: RenderInputs) -> str:
    return f"{inputs.account_id}.dkr.ecr.{inputs.region}.amazonaws.com/{service.ecr_repository}:{inputs.image_tag}"


def secret_arn(region: str, account_id: str, secret: str) -> str:
    """Partial ARN (no random suffix): ECS resolves it, and it does not depend on the live secret."""
    return f"arn:aws:secretsmanager:{region}:{account_id}:secret:{secret}"


def template_variables(config: Config, service_name: str, inputs: RenderInputs) -> dict[str, Any]:
    service = config.service(service_name)
    env = config.environment(inputs.env_name)
    domain = config.domain_of(inputs.env_name)
    fmt = {
        "app_mode": env.app_mode,
        "app_env": env.app_env,
        "region": inputs.region,
        "base_url": inputs.base_url or f"https://{domain}",
        "domain": domain,
        "project": config.project,
        "env": inputs.env_name,
    }
    prefix = secret_arn(inputs.region, inputs.account_id, config.secret_id(inputs.env_name))
    return {
        "project": config.project,
        "env_name": inputs.env_name,
        "env": env.model_dump(),
        "region": inputs.region,
        "account_id": inputs.account_id,
        "domain": domain,
        "base_url": fmt["base_url"],
        "service": service.model_dump(),
        "image": image_uri(config, service, inputs),
        "image_tag": inputs.image_tag,
        "execution_role_arn": f"arn:aws:iam::{inputs.account_id}:role/{config.execution_role}",
        "task_role_arn": f"arn:aws:iam::{inputs.account_id}:role/{config.task_role}",
        "log_group": service.log_group or f"/ecs/{service.family}",
        "health_check_command": (
            service.health_check_command.format(port=service.port, path=service.health_check_path)
            if service.port
            else None  # a worker or scheduler: no port, no health check (ECS watches its process)
        ),
        "environment": [{"name": k, "value": v.format(**fmt)} for k, v in service.environment.items()],
        "secrets": [{"name": k, "valueFrom": f"{prefix}:{key}::"} for k, v in service.secrets.items() for key in [v]],
        "secret_arn": prefix,
    }


def render(config: Config, service_name: str, inputs: RenderInputs) -> dict[str, Any]:
    """Render and validate one service's task definition; raises TemplateError / TaskDefinitionInvalid."""
    service = config.service(service_name)
    text = render_text(config, service.template, template_variables(config, service_name, inputs))
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(
            f"template {service.template} did not render valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            hint="check commas and quotes around that line of the rendered output",
        ) from None
    if not isinstance(document, dict):
        raise TemplateError(f"template {service.template} must render a JSON object")
    validate(document, service, source=service.template)
    return document


def render_text(config: Config, template_name: str, variables: dict[str, Any]) -> str:
    import jinja2

    dirs = template_dirs(config)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    try:
        template = env.get_template(template_name)
    except jinja2.TemplateNotFound:
        raise TemplateError(
            f"template {template_name} not found",
            hint=f"looked in: {', '.join(str(d) for d in dirs) or 'no templates directory'}",
            code="template-not-found",
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template {exc.name or template_name}, line {exc.lineno}: {exc.message}") from None
    except UnicodeDecodeError as exc:
        raise TemplateError(f"template {template_name} is not UTF-8 text (byte {exc.start})") from None
    try:
        return template.render(**variables)
    except jinja2.UndefinedError as exc:
        line = _template_line(exc, template_name)
        where = f", line {line}" if line else ""
        raise TemplateError(
            f"template {template_name}{where}: undefined variable ({exc.message})",
            hint="define it in arbiter-ops.toml or remove it from the template",
            code="undefined-variable",
        ) from None
    except jinja2.TemplateNotFound as exc:  # an {% include %} or {% import %} of a template that is not there
        raise TemplateError(
            f"template {template_name} includes {exc.name}, which is not found",
            hint=f"looked in: {', '.join(str(d) for d in dirs)}",
            code="template-not-found",
        ) from None
    except jinja2.TemplateSyntaxError as exc:  # in an included template
        raise TemplateError(f"template {exc.name or template_name}, line {exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise TemplateError(f"template {template_name} recurses without end (a macro calling itself?)") from None
    except Exception as exc:  # {{ 1/0 }}, a filter on the wrong type: the template's fault, not ours
        line = _template_line(exc, template_name)
        where = f", line {line}" if line else ""
        raise TemplateError(f"template {template_name}{where}: {type(exc).__name__}: {str(exc)[:200]}") from None


def _template_line(exc: BaseException, template_name: str) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(template_name):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def validate(td: dict[str, Any], service: ServiceConfig | None, source: str = "task definition") -> None:
    """Raise TaskDefinitionInvalid listing every problem found."""
    problems = botocore_problems(td)
    cpu, memory = td.get("cpu"), td.get("memory")
    if "FARGATE" in (td.get("requiresCompatibilities") or []):
        if td.get("networkMode") != "awsvpc":
            problems.append(f"networkMode must be 'awsvpc' on Fargate (got {td.get('networkMode')!r})")
        if not fargate_size_ok(cpu, memory):
            problems.append(
                f"cpu {cpu} / memory {memory} is not a Fargate task size "
                f"(cpu {cpu} allows memory {fargate_memory_options(cpu)})"
            )
    containers = td.get("containerDefinitions") or []
    for c in containers if isinstance(containers, list) else []:
        if not isinstance(c, dict):
            continue
        problems += _duplicate_names(c)
    if service is not None and isinstance(containers, list):
        main = next((c for c in containers if isinstance(c, dict) and c.get("name") == service.container), None)
        if main is None:
            problems.append(f"no container named {service.container!r} (services.{service.ecs_service}.container)")
        elif service.port is not None:  # a service behind the ALB (a worker or scheduler has no port)
            ports = [p.get("containerPort") for p in main.get("portMappings") or [] if isinstance(p, dict)]
            if service.port not in ports:
                problems.append(f"container port {ports} does not include the service port {service.port}")
            hc = " ".join(str(x) for x in (main.get("healthCheck") or {}).get("command") or [])
            if f":{service.port}{service.health_check_path}" not in hc:
                problems.append(f"health check does not probe :{service.port}{service.health_check_path} (got {hc!r})")
        if str(cpu) != str(service.cpu) or str(memory) != str(service.memory):
            problems.append(f"cpu/memory {cpu}/{memory} differ from the service config {service.cpu}/{service.memory}")
    if problems:
        raise TaskDefinitionInvalid(f"{source}: " + "; ".join(problems), hint="fix the template or the config")


def _duplicate_names(container: dict[str, Any]) -> list[str]:
    problems = []
    env_names = [e.get("name") for e in container.get("environment") or [] if isinstance(e, dict)]
    sec_names = [s.get("name") for s in container.get("secrets") or [] if isinstance(s, dict)]
    cname = container.get("name")
    for name in sorted({n for n in env_names if n in sec_names}):
        problems.append(f"container {cname}: {name} is in both environment and secrets")
    for label, names in (("environment", env_names), ("secrets", sec_names)):
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"container {cname}: {name} appears twice in {label}")
    return problems


def botocore_problems(td: dict[str, Any]) -> list[str]:
    """botocore's own validator against the RegisterTaskDefinition input shape."""
    from botocore.validate import ParamValidator

    from arbiter_ops.core.aws import service_model

    shape = service_model("ecs").operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(td, shape)
    if not report.has_errors():
        return []
    # Every line is one problem (botocore's report has no header line); each is cut short, since botocore
    # quotes the offending value.
    lines = [line.strip() for line in report.generate_report().splitlines() if line.strip()]
    return [line if len(line) <= 300 else line[:297] + "..." for line in lines] or ["rejected by botocore's validator"]


# -- comparison ------------------------------------------------------------------------------
def strip_read_only(td: dict[str, Any]) -> dict[str, Any]:
    td = td.get("taskDefinition", td) if isinstance(td.get("taskDefinition"), dict) else td
    return {k: v for k, v in td.items() if k not in READ_ONLY_FIELDS}


def normalize(td: dict[str, Any]) -> dict[str, Any]:
    """A canonical form for comparison: no read-only fields, no empty values, sorted name lists, and
    no container-level ``cpu: 0`` (the value ECS reports when a container sets none)."""
    out = _clean(strip_read_only(td))
    for container in out.get("containerDefinitions", []):
        if isinstance(container, dict) and str(container.get("cpu")) == "0":
            del container["cpu"]
    return out


def _clean(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        out = {k: _clean(v, k) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, [], {}, "")}
    if isinstance(value, list):
        items = [_clean(v) for v in value]
        if key in ("environment", "secrets") and all(isinstance(i, dict) for i in items):
            items.sort(key=lambda i: str(i.get("name")))
        return items
    if key in ("cpu", "memory") and isinstance(value, int):
        return str(value)
    return value


def identical(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    return normalize(live) == normalize(desired)


def diff_text(live: dict[str, Any] | None, desired: dict[str, Any], live_label: str, desired_label: str) -> str:
    a = json.dumps(normalize(live), indent=2, sort_keys=True).splitlines() if live else []
    b = json.dumps(normalize(desired), indent=2, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(a, b, live_label, desired_label, lineterm=""))


def load_task_definition_file(path: str) -> dict[str, Any]:
    """A file as `render` writes it or as `aws ecs describe-task-definition` prints it (wrapper or not)."""
    try:
        text = Path(path).read_text(encoding="utf-8") if path != "-" else sys.stdin.read()
    except OSError as exc:
        raise UsageError(f"cannot read task definition file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})", hint="save it as UTF-8 JSON") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise UsageError(f"{path}: JSON nested too deeply to be a task definition") from None
    if isinstance(data, dict) and isinstance(data.get("taskDefinition"), dict):
        data = data["taskDefinition"]
    if not isinstance(data, dict) or "containerDefinitions" not in data:
        raise UsageError(f"{path}: not a task definition (no containerDefinitions)")
    containers = data["containerDefinitions"]
    # What ECS would refuse at registration is bad input here, not "0 errors".
    if not isinstance(containers, list) or not containers:
        raise UsageError(f"{path}: containerDefinitions must be a non-empty list of container definitions")
    for i, container in enumerate(containers):
        if not isinstance(container, dict) or not isinstance(container.get("name"), str) or not container["name"]:
            raise UsageError(f"{path}: containerDefinitions[{i}] is not a container definition with a name")
        for key in ("environment", "secrets"):
            entries = container.get(key, [])
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise UsageError(f"{path}: containerDefinitions[{i}].{key} must be a list of objects")
    return data
