"""The local sandbox as a whole: AWS (moto + ECS overlay), Stripe and Arbiter API stand-ins, a real
PostgreSQL 16 with pgvector, seeded with the guide's infrastructure.

`--env local` uses a persistent sandbox when one is running (its state file says where), else starts an
embedded one for the command's duration. Tests point the CLI at their own sandbox with the same state
file (``ARBITER_OPS_LOCAL_STATE``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets as pysecrets
import shutil
import signal
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arbiter_ops.billing.fingerprint import FINGERPRINT_KEY, MANAGED_BY, MANAGED_BY_KEY, fingerprint

if TYPE_CHECKING:
    from arbiter_ops.core.config import Config

STATE_ENV = "ARBITER_OPS_LOCAL_STATE"
STEP_ENV = "ARBITER_OPS_SANDBOX_STEP_SECONDS"
POSTGRES_ENV = "ARBITER_OPS_SANDBOX_POSTGRES"  # "0": start no PostgreSQL (faster; migrate --preflight fails)


STATE_FILE = Path(".arbiter-ops") / "local.json"


def state_path() -> Path:
    """Where the persistent sandbox's state file is: ARBITER_OPS_LOCAL_STATE, else the first
    ``.arbiter-ops/local.json`` in this directory or one above it (so a command run from a subdirectory of the
    project finds the sandbox `local up` started at its top), else in the project's top directory (the
    nearest one above with ``.git`` or ``arbiter-ops.toml``), else in this directory."""
    if os.environ.get(STATE_ENV):
        return Path(os.environ[STATE_ENV])
    here = Path.cwd()
    for directory in (here, *here.parents):
        if (directory / STATE_FILE).is_file():
            return directory / STATE_FILE
    for directory in (here, *here.parents):
        if (directory / ".git").exists() or (directory / "arbiter-ops.toml").is_file():
            return directory / STATE_FILE
    return here / STATE_FILE


@dataclass
class LocalEndpoints:
    aws_endpoint_url: str
    stripe_api_base: str
    app_base_url: str
    pid: int
    # Parts that did not start, each with its consequence ("PostgreSQL did not start: ...; migrate --preflight
    # will fail"): the rest of the sandbox works, and whoever uses it is told once, up front.
    problems: list[str] = field(default_factory=list)
    _owner: LocalSandbox | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "aws_endpoint_url": self.aws_endpoint_url,
            "stripe_api_base": self.stripe_api_base,
            "app_base_url": self.app_base_url,
            "pid": self.pid,
            "problems": list(self.problems),
        }

    def close(self) -> None:
        """Stop the sandbox if this run started it (an embedded one); a persistent one stays."""
        if self._owner is not None:
            self._owner.stop()
            self._owner = None


def new_stripe_key() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "sk_test_" + "".join(pysecrets.choice(alphabet) for _ in range(24))


class LocalSandbox:
    """Start, seed, reset and stop every part of the sandbox in this process."""

    def __init__(self, config: Config, progress: str | None = None, with_postgres: bool | None = None) -> None:
        self.config = config
        # The embedded sandbox of a CLI run rolls out in timed steps (a realistic demo: counts move while
        # you watch); tests pass "per-call", benchmarks "instant". ARBITER_OPS_SANDBOX_STEP_SECONDS=0: instant.
        step = float(os.environ.get(STEP_ENV, "1.0"))
        self.progress = progress or ("timed" if step > 0 else "instant")
        self.step_seconds = step if step > 0 else 1.0
        self.with_postgres = os.environ.get(POSTGRES_ENV) != "0" if with_postgres is None else with_postgres
        self.problems: list[str] = []
        self.aws: Any = None
        self.stripe: Any = None
        self.api: Any = None
        self.pg: Any = None
        self.pg_dir: str | None = None
        self.database_url = "postgresql://postgres:@/postgres?host=/nonexistent"
        self.stripe_key = new_stripe_key()
        self.nextauth_secret = ""
        self.seeded: Any = None
        self.endpoints: LocalEndpoints | None = None

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> LocalEndpoints:
        from arbiter_sandbox.api_server import ArbiterApiStandIn
        from arbiter_sandbox.aws_server import AwsSandbox
        from arbiter_sandbox.stripe_server import StripeStandIn

        pg_thread = threading.Thread(target=self._start_postgres, name="pgserver", daemon=True)
        if self.with_postgres:
            pg_thread.start()  # ~0.5 s: in parallel with moto's first-request warm-up
        self.aws = AwsSandbox(progress=self.progress, step_seconds=self.step_seconds or 2.0)  # type: ignore[arg-type]
        aws_url = self.aws.start()
        self.stripe = StripeStandIn(api_keys=[self.stripe_key])
        stripe_url = self.stripe.start()
        self.nextauth_secret = _new_nextauth_secret()
        self.api = ArbiterApiStandIn(self.nextauth_secret)
        self.aws.ecs.exit_listeners.append(self._one_off_exited)
        from arbiter_sandbox.app_webhook import follow_backend

        follow_backend(self.aws.ecs, self.api, self.config)  # its STRIPE_WEBHOOK_SECRET: the backend tasks' own
        api_url = self.api.start()
        if self.with_postgres:
            pg_thread.join(timeout=60)
        else:
            self.problems.append(f"PostgreSQL was not started ({POSTGRES_ENV}=0); migrate --preflight will fail")
        self.endpoints = LocalEndpoints(aws_url, stripe_url, api_url, os.getpid(), self.problems, _owner=self)
        self.aws.reset()  # moto's state is process-wide: a sandbox started earlier in this process left some
        self._seed()
        return self.endpoints

    def _start_postgres(self) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import pgserver

            self.pg_dir = tempfile.mkdtemp(prefix="arbiter-ops-pg-")
            self.pg = pgserver.get_server(self.pg_dir, cleanup_mode="delete")
            self.database_url = self.pg.get_uri()
            self._migrated_schema()
        except Exception as exc:  # the rest of the sandbox still works; say so up front
            reason = f"{type(exc).__name__}: {exc}"
            self.problems.append(f"PostgreSQL did not start: {reason}; migrate --preflight will fail")

    def _one_off_exited(self, command: str, exit_code: int | None) -> None:
        """What a one-off task did to the app: the real catalog seed (gndumbri/arbiter-ai
        backend/scripts/seed_catalog.py, `python -m scripts.seed_catalog`) fills the rulesets the catalog lists."""
        if "scripts.seed_catalog" in command and exit_code == 0:
            self.api.set_mode(catalog_empty=False)

    def _migrated_schema(self) -> None:
        """The part of the app's schema that `migrate` checks after `alembic upgrade head`: the sandbox's one-off
        tasks do not run the real migrations, so its database starts as they leave it (gndumbri/arbiter-ai
        backend/alembic/versions/d1e2f3a4b5c6_add_pgvector_and_rule_chunks.py: rule_chunks.embedding vector(1024))."""
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS rule_chunks (id bigserial PRIMARY KEY, chunk_text text, "
                "embedding vector(1024))"
            )

    def _seed(self, reuse_infra: bool = False) -> None:
        from arbiter_sandbox.seed import SeedInputs, seed

        assert self.endpoints is not None
        endpoint_id, webhook_secret = self._create_webhook()
        self.api.set_webhook_secret(webhook_secret)
        inputs = SeedInputs(
            endpoint_url=self.endpoints.aws_endpoint_url,
            region=self.config.region,
            stripe_api_base=self.endpoints.stripe_api_base,
            stripe_key=self.stripe_key,
            app_base_url=self.endpoints.app_base_url,
            database_url=self.database_url,
            nextauth_secret=self.nextauth_secret,
        )
        infra = self.seeded.infra if reuse_infra and self.seeded is not None else None
        with self.aws.ecs.quotas_paused():
            self.seeded = seed(inputs, self.config, (endpoint_id, webhook_secret), infra)
        self.aws.touched.clear()  # what the seed wrote is the fresh state

    def _create_webhook(self) -> tuple[str, str]:
        """Register the app's webhook endpoint in the Stripe stand-in, over its HTTP API."""
        assert self.endpoints is not None
        params = [("url", self.endpoints.app_base_url + self.config.stripe.webhook_path)]
        params += [(f"enabled_events[{i}]", e) for i, e in enumerate(self.config.stripe.webhook_events)]
        params += [(f"metadata[{MANAGED_BY_KEY}]", MANAGED_BY), ("description", "Arbiter AI billing (sandbox seed)")]
        request = urllib.request.Request(
            self.endpoints.stripe_api_base + "/v1/webhook_endpoints",
            data=urllib.parse.urlencode(params).encode(),
            headers={"Authorization": f"Bearer {self.stripe_key}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            body = json.loads(resp.read())
        # As `stripe-webhook` does for endpoints it creates: a fingerprint of the secret in the metadata,
        # so `stripe-webhook --check` can prove the stored secret belongs to this endpoint.
        update = urllib.request.Request(
            f"{self.endpoints.stripe_api_base}/v1/webhook_endpoints/{body['id']}",
            data=urllib.parse.urlencode({f"metadata[{FINGERPRINT_KEY}]": fingerprint(body["secret"])}).encode(),
            headers={"Authorization": f"Bearer {self.stripe_key}"},
            method="POST",
        )
        urllib.request.urlopen(update, timeout=10).close()
        return body["id"], body["secret"]

    def reset(self) -> None:
        """Back to the fresh seed: every emulator forgets its state, then the seed runs again. The infrastructure
        part (network, databases, certificate, load balancer, CDN, DNS: seed.INFRA_BACKENDS) is kept, and not
        created again, when no request wrote to it since the last seed: most tests only read it."""
        from arbiter_sandbox.seed import INFRA_BACKENDS, INFRA_SCOPES, infra_alive

        reuse = (
            self.seeded is not None
            and not (self.aws.touched & INFRA_SCOPES)
            and "?" not in self.aws.touched
            and infra_alive(self.seeded.infra, self.config, self.config.region)
        )
        self.aws.reset(keep=INFRA_BACKENDS if reuse else frozenset())
        self.stripe.reset()
        self.api.reset()
        self.nextauth_secret = _new_nextauth_secret()
        self.api.set_secret(self.nextauth_secret)
        self._seed(reuse_infra=reuse)

    def stop(self) -> None:
        for part in (self.api, self.stripe, self.aws):
            if part is not None:
                with contextlib.suppress(Exception):  # stopping must go on for the other parts
                    part.stop()
        if self.pg is not None:
            with contextlib.suppress(Exception):
                self.pg.cleanup()
            self.pg = None
        if self.pg_dir and os.path.isdir(self.pg_dir):
            shutil.rmtree(self.pg_dir, ignore_errors=True)


def _new_nextauth_secret() -> str:
    return pysecrets.token_urlsafe(36)


# -- finding or starting the sandbox for a command ------------------------------------------
def read_state() -> LocalEndpoints | None:
    """The persistent sandbox's endpoints if one is running and answering, else None."""
    path = state_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        endpoints = LocalEndpoints(
            data["aws_endpoint_url"],
            data["stripe_api_base"],
            data["app_base_url"],
            int(data["pid"]),
            [str(p) for p in data.get("problems") or []],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(endpoints.pid) or not _healthy(endpoints.aws_endpoint_url):
        return None
    return endpoints


def write_state(endpoints: LocalEndpoints, extra: dict[str, Any] | None = None) -> Path:
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**endpoints.as_dict(), **(extra or {})}, indent=2), encoding="utf-8")
    tmp.replace(path)  # atomic: a reader never sees half a file
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _healthy(aws_url: str) -> bool:
    try:
        with urllib.request.urlopen(aws_url + "/_sandbox/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def stop_pid(pid: int, timeout: float = 15.0) -> bool:
    """SIGTERM, wait, then SIGKILL. True if the process is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid) or _zombie(pid):
            return True
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    time.sleep(0.2)
    return not _alive(pid) or _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False
