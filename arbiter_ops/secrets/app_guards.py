"""The real backend's own startup guards as check-secrets findings, so that a deploy is refused before ECS starts
a task the app would stop at once. Each rule cites the file of `gndumbri/arbiter-ai` it follows:

- ``backend/app/core/environment.py`` ``validate_environment()`` runs in the FastAPI lifespan; in **every** mode
  it refuses an ``APP_MODE`` outside mock/sandbox/production, an ``ALLOWED_ORIGINS`` entry that is not an http(s)
  URL with a host (the list is split on commas, never parsed as JSON; ``*`` fails that test too), and an
  ``APP_BASE_URL`` that is not a full http(s) URL (l.163-186); in production it refuses a missing
  ``STRIPE_SECRET_KEY``, ``NEXTAUTH_SECRET`` (``AUTH_SECRET`` is its alias, ``config.py`` l.110-113) and the API
  key its providers need: ``LLM_PROVIDER`` / ``EMBEDDING_PROVIDER`` ``openai`` -> ``OPENAI_API_KEY``, ``LLM_PROVIDER``
  ``anthropic`` -> ``ANTHROPIC_API_KEY`` (l.91-132, l.218-239). Nothing there refuses a ``mock`` provider.
- ``backend/app/api/routes/billing.py``: with an empty ``STRIPE_WEBHOOK_SECRET`` the webhook route answers 503 when
  ``APP_ENV`` is production and accepts *unsigned* events otherwise (l.316-327).

Our stricter operational rules stay in :mod:`.rules`; a finding says when the app itself would still start.
"""

from __future__ import annotations

from arbiter_ops.secrets.findings import ContainerView, Expectations, Finding, finding
from arbiter_ops.secrets.rules import http_url, parse_origins, usable, where

PROVIDER_KEYS = {  # environment.py _warn_missing_provider_keys: (variable, value) -> the key it needs
    ("LLM_PROVIDER", "openai"): "OPENAI_API_KEY",
    ("LLM_PROVIDER", "anthropic"): "ANTHROPIC_API_KEY",
    ("EMBEDDING_PROVIDER", "openai"): "OPENAI_API_KEY",
}
APP_DEFAULT_BASE_URL = "http://localhost:3000"  # config.py l.89: what the app uses without APP_BASE_URL


def _backend(view: ContainerView) -> bool:
    return view.role == "backend" and view.main and view.present


def rule_app_urls(view: ContainerView, expect: Expectations) -> list[Finding]:
    """origin-mismatch, in every environment: what validate_environment() refuses at startup."""
    if view.role != "backend":
        return []
    out = []
    for given in usable(view):
        value = (given.value or "").strip()
        if given.name == "ALLOWED_ORIGINS":
            bad = [o for o in parse_origins(value) if not http_url(o)]
            if bad:
                star = " ('*' is refused in every mode)" if "*" in bad else ""
                shown = ", ".join(o for o in bad if len(o) <= 60 and " " not in o)[:200] or "an entry"
                message = (
                    f"{where(given)} has {len(bad)} entr{'y' if len(bad) == 1 else 'ies'} the app refuses at startup: "
                    f"{shown}{star}; it splits the value on commas (no JSON list) and wants http(s)://host origins"
                )
                fix = f"set {given.name} to comma-separated origins, e.g. https://{expect.domain}"
                out.append(finding(expect, "origin-mismatch", view, given, message, fix))
        elif given.name == "APP_BASE_URL" and not http_url(value.rstrip("/")):
            message = f"{where(given)} is not a full http(s) URL: the app refuses to start"
            out.append(finding(expect, "origin-mismatch", view, given, message, f"set it to https://{expect.domain}"))
    names = {g.name for g in view.given}
    if _backend(view) and expect.production and "APP_BASE_URL" not in names:
        message = (
            f"APP_BASE_URL is not given to the production backend: it starts, but builds Stripe and invite links "
            f"on {APP_DEFAULT_BASE_URL}"
        )
        fix = f"map APP_BASE_URL=https://{expect.domain}"
        out.append(finding(expect, "origin-mismatch", view, None, message, fix, name="APP_BASE_URL"))
    return out


def rule_provider_keys(view: ContainerView, expect: Expectations) -> list[Finding]:
    """required-missing: an API key the configured LLM / embedding provider needs (the app refuses to start in
    production without it, and warns elsewhere)."""
    if not _backend(view):
        return []
    names = {g.name for g in view.given}
    needed: dict[str, str] = {}
    for given in usable(view):
        key = PROVIDER_KEYS.get((given.name, (given.value or "").strip().lower()))
        if key and key not in names:
            needed.setdefault(key, f"{given.name}={(given.value or '').strip().lower()}")
    crash = "the app refuses to start" if expect.production else "the app starts, and fails at its first query"
    return [
        finding(
            expect,
            "required-missing",
            view,
            None,
            f"{key} is needed by {why} and not given to the backend ({crash})",
            f"map {key} to a key of the environment's secret, or choose another provider",
            name=key,
        )
        for key, why in sorted(needed.items())
    ]


def rule_mock_provider(view: ContainerView, expect: Expectations) -> list[Finding]:
    """mock-provider: a `*_PROVIDER` set to `mock` (canned answers); the app starts with it even in production."""
    out = []
    for given in usable(view):
        if given.name.endswith("_PROVIDER") and (given.value or "").strip().lower() == "mock":
            tail = "the app starts with it, and answers from canned data" if expect.production else "fine for tests"
            message = f"{where(given)} is mock in {expect.env_name} ({tail})"
            fix = f"set {given.name} to a real provider (bedrock, openai, ...)"
            out.append(finding(expect, "mock-provider", view, given, message, fix))
    return out


def rule_webhook_unsigned(view: ContainerView, expect: Expectations) -> list[Finding]:
    """webhook-unsigned: outside production, an empty or absent STRIPE_WEBHOOK_SECRET makes the app accept
    unsigned webhooks (anyone can post a checkout.session.completed)."""
    if expect.production or not _backend(view):
        return []
    given = next((g for g in view.given if g.name == "STRIPE_WEBHOOK_SECRET"), None)
    if given is not None and (given.value is None or (given.value or "").strip()):
        return []  # set (or not readable here): the other rules judge it
    what = "is empty" if given is not None else "is not given to the backend"
    message = f"STRIPE_WEBHOOK_SECRET {what}: outside production the app then accepts unsigned Stripe webhooks"
    fix = "run `arbiter-ops stripe-webhook` to create the endpoint and store its signing secret"
    return [finding(expect, "webhook-unsigned", view, given, message, fix, name="STRIPE_WEBHOOK_SECRET")]


APP_RULES = (rule_app_urls, rule_provider_keys, rule_mock_provider, rule_webhook_unsigned)
