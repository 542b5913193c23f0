"""The `check-secrets` findings about what a container is given: one function per finding code.

Pure functions of already-resolved values (see :mod:`arbiter_ops.secrets.analysis` for how a value is
resolved from a `valueFrom`). A message or fix never contains a value: it names the variable, the secret
and the key, and at most a well-known prefix (``sk_test_``) or URL scheme.

Precedence, so that one problem is one finding under its most specific code:

1. A reference that does not resolve (bad-value-from > arn-mismatch > secret-not-found > secret-not-json >
   missing-key) stops there: no value rule runs on it, and the variable still counts as *given*, so
   ``required-missing`` is not added on top.
2. ``placeholder-value`` wins over every other value rule: a template value (``sk_live_...``, ``<PW>``) is
   not also a wrong-mode Stripe key, a weak secret, a bad URL or a wrong origin.
3. ``duplicate-name`` wins over ``plaintext-secret`` for a name that is also in ``secrets``: the one fix
   (delete the ``environment`` entry) solves both.
4. ``auth-secret-mismatch`` (in :mod:`arbiter_ops.secrets.analysis`, with the other rules across containers)
   is only judged between two usable values (resolved, not placeholders).
"""

from __future__ import annotations

import re
import urllib.parse
from collections import Counter
from collections.abc import Iterator

from arbiter_ops.secrets.findings import ContainerView, Expectations, Finding, Given, finding

MIN_NEXTAUTH_SECRET = 32


def is_sensitive(name: str) -> bool:
    """A variable whose value is a secret (`plaintext-secret` when it is in plain `environment`)."""
    upper = name.upper()
    return (
        "_SECRET" in upper
        or upper.endswith(("_KEY", "_TOKEN"))  # *_API_KEY, *_ACCESS_KEY, GITHUB_TOKEN, ...
        or "PASSWORD" in upper
        or upper == "DATABASE_URL"
    )


# A template placeholder is a word-like token in angle brackets (<PW>, <RDS_ENDPOINT>, <your-password>); an
# address such as "Arbiter AI <noreply@arbiter-ai.com>" is not one (the contract, as amended).
_ANGLE_PLACEHOLDER = re.compile(r"<[A-Za-z][A-Za-z0-9_-]*>")
_ELLIPSIS_TEMPLATE = re.compile(r"[A-Za-z]+(?:_[A-Za-z]+)*_\.\.\.")  # sk_live_..., whsec_..., price_...
_PLACEHOLDER_WORDS = {"changeme", "change-me", "change_me"}


def placeholder_reason(value: str) -> str | None:
    stripped = value.strip()
    if not stripped:
        return "is empty"
    if _ANGLE_PLACEHOLDER.search(value):
        return "contains a <PLACEHOLDER> of a template"
    if _ELLIPSIS_TEMPLATE.fullmatch(stripped):
        return "is still the guide's template value (a prefix followed by '...')"
    if stripped.lower() in _PLACEHOLDER_WORDS:
        return "is still 'changeme'"
    return None


def where(given: Given) -> str:
    """The variable and where its value comes from: ``NAME (from SECRET)``, ``NAME (from SECRET:KEY)``."""
    ref = given.ref
    if ref is None:
        return f"{given.name} (plain environment)"
    if ref.key is None:
        return f"{given.name} (whole secret {ref.describe()})"
    key = "" if ref.key == given.name else f":{ref.key}"
    return f"{given.name} (from {ref.describe()}{key})"


def usable(view: ContainerView) -> Iterator[Given]:
    """Variables with a known value that is not a placeholder: what the value rules judge."""
    for given in view.given:
        if given.value is not None and placeholder_reason(given.value) is None:
            yield given


# -- one function per code ---------------------------------------------------------------------
def rule_placeholder_value(view: ContainerView, expect: Expectations) -> list[Finding]:
    out = []
    for given in view.given:
        if given.value is None:
            continue
        reason = placeholder_reason(given.value)
        if reason is None:
            continue
        # An empty plain variable can be deliberate (LOG_FORMAT=""); empty only matters where a value must be.
        if (
            reason == "is empty"
            and given.source == "environment"
            and not (is_sensitive(given.name) or given.name in view.required)
        ):
            continue
        if reason == "is empty" and given.name == "STRIPE_WEBHOOK_SECRET" and not expect.production:
            continue  # the app then accepts unsigned webhooks: webhook-unsigned says so
        if given.ref is not None:
            fix = f"put the real value under {given.ref.key or 'the secret string'} in secret {given.ref.name}"
        else:
            fix = f"set a real value for {given.name} (in the config's [services.{view.service}.environment])"
        out.append(finding(expect, "placeholder-value", view, given, f"{where(given)} {reason}", fix))
    return out


def rule_stripe_key_mode(view: ContainerView, expect: Expectations) -> list[Finding]:
    out = []
    for given in usable(view):
        value = given.value or ""
        # Only the matched prefix is ever shown, never the value.
        test = next((p for p in ("sk_test_", "rk_test_") if value.startswith(p)), None)
        live = next((p for p in ("sk_live_", "rk_live_") if value.startswith(p)), None)
        if expect.production and test:
            message = f"{where(given)} is a Stripe test-mode key ({test}…) in {expect.env_name}"
            fix = "use the live key (sk_live_/rk_live_) from the Stripe dashboard in production"
        elif not expect.production and live:
            message = f"{where(given)} is a Stripe live key ({live}…) outside production ({expect.env_name})"
            fix = f"use a test-mode key (sk_test_/rk_test_) in {expect.env_name}; rotate the live key if it leaked"
        else:
            continue
        out.append(finding(expect, "stripe-key-mode", view, given, message, fix))
    return out


def rule_weak_secret(view: ContainerView, expect: Expectations) -> list[Finding]:
    return [
        finding(
            expect,
            "weak-secret",
            view,
            given,
            f"{where(given)} is shorter than {MIN_NEXTAUTH_SECRET} characters",
            "generate a new one (openssl rand -base64 48) and store it for both NEXTAUTH_SECRET and AUTH_SECRET",
        )
        for given in usable(view)
        if given.name == "NEXTAUTH_SECRET" and len(given.value or "") < MIN_NEXTAUTH_SECRET
    ]


_URL_RULES: dict[tuple[str | None, str], tuple[tuple[str, ...], str]] = {
    ("backend", "DATABASE_URL"): (("postgresql+asyncpg://",), "postgresql+asyncpg://USER:PASSWORD@HOST:5432/DB"),
    # A Node driver (the frontend) cannot use the asyncpg form.
    ("frontend", "DATABASE_URL"): (("postgresql://", "postgres://"), "postgresql://USER:PASSWORD@HOST:5432/DB"),
}
_REDIS_SCHEMES = ("redis://", "rediss://")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,30}://")


def rule_bad_url(view: ContainerView, expect: Expectations) -> list[Finding]:
    out = []
    for given in usable(view):
        if given.name == "REDIS_URL":
            schemes, example = _REDIS_SCHEMES, "rediss://HOST:6379/0 (or redis://)"
        elif (view.role, given.name) in _URL_RULES:
            schemes, example = _URL_RULES[(view.role, given.name)]
        else:
            continue
        value = (given.value or "").strip()
        if value.lower().startswith(schemes) and value.split("://", 1)[1]:
            continue
        scheme = _SCHEME.match(value.lower())
        got = f" (it is a {scheme.group(0)} URL)" if scheme else " (it is not a URL)"
        message = f"{where(given)} of the {view.service} is not a {' or '.join(schemes)} URL{got}"
        out.append(finding(expect, "bad-url", view, given, message, f"store it as {example}"))
    return out


_APP_VALUES = {"mock", "sandbox", "production", "development", "staging"}


def shown_app_value(value: str) -> str | None:
    """An APP_ENV / APP_MODE value as it may be printed: a well-known mode is shown, anything else is not (it
    might be a pasted secret)."""
    return repr(value) if value in _APP_VALUES else None


def rule_app_env_mismatch(view: ContainerView, expect: Expectations) -> list[Finding]:
    out = []
    expected = {"APP_ENV": expect.app_env, "APP_MODE": expect.app_mode}
    fix = f"set APP_ENV={expect.app_env} and APP_MODE={expect.app_mode} for {expect.env_name}"
    names = {g.name for g in view.given}
    for given in usable(view):
        if given.name in expected and (given.value or "").strip() != expected[given.name]:
            # Only a plain, well-known value is shown; a value from a secret is never printed.
            value = shown_app_value(given.value or "") if given.ref is None else None
            shown = f" is {value}" if value else " differs"
            message = f"{where(given)}{shown}; {expect.env_name} expects {expected[given.name]!r}"
            out.append(finding(expect, "app-env-mismatch", view, given, message, fix))
    if view.role == "backend" and view.main and view.present:
        for name in sorted(set(expected) - names):
            message = f"{name} is not given to the backend; {expect.env_name} expects {expected[name]!r}"
            out.append(finding(expect, "app-env-mismatch", view, None, message, fix, name=name))
    return out


def parse_origins(value: str) -> list[str]:
    """The entries of an ALLOWED_ORIGINS value as the real app reads them (gndumbri/arbiter-ai
    backend/app/config.py ``allowed_origins_list``): split on commas, stripped, empties dropped; a JSON list is
    not parsed (its brackets make the entries invalid URLs, which the app refuses)."""
    return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]


def http_url(value: str) -> bool:
    """The app's own test of an origin or base URL (environment.py l.163-165): http(s) scheme and a host."""
    parts = urllib.parse.urlparse(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def outside_domain(origins: list[str], domain: str) -> list[str]:
    """The origins a production backend must not allow: anything but https:// on the domain or a subdomain
    (no http://, no localhost, no *)."""
    home = f"https://{domain}"
    return [o for o in origins if not (o.startswith("https://") and (o == home or o.endswith("." + domain)))]


def rule_origin_mismatch(view: ContainerView, expect: Expectations) -> list[Finding]:
    if not expect.production:
        return []
    out = []
    origin = f"https://{expect.domain}"
    for given in usable(view):
        value = given.value or ""
        if given.name == "ALLOWED_ORIGINS":
            # The configured origin must be there, and nothing outside the domain may be.
            items = parse_origins(value)
            if not all(http_url(i) for i in items):
                continue  # the app refuses it at startup: app_guards says so, once
            ok = origin in items and not outside_domain(items, expect.domain)
        elif given.name == "APP_BASE_URL":
            if not http_url(value.strip().rstrip("/")):
                continue
            ok = value.strip().rstrip("/") == origin
        else:
            continue
        if not ok:
            message = f"{where(given)} is not the production origin {origin}"
            out.append(finding(expect, "origin-mismatch", view, given, message, f"set {given.name}={origin}"))
    if view.role == "backend" and view.main and view.present and "ALLOWED_ORIGINS" not in {g.name for g in view.given}:
        message = f"ALLOWED_ORIGINS is not given to the production backend (expected {origin})"
        fix = f"map ALLOWED_ORIGINS={origin}"
        out.append(finding(expect, "origin-mismatch", view, None, message, fix, name="ALLOWED_ORIGINS"))
    return out


def rule_plaintext_secret(view: ContainerView, expect: Expectations) -> list[Finding]:
    in_secrets = {g.name for g in view.given if g.source == "secrets"}
    seen: set[str] = set()
    out = []
    for given in view.given:
        if given.source != "environment" or not is_sensitive(given.name) or given.name in seen:
            continue
        seen.add(given.name)
        if given.name in in_secrets:
            continue  # duplicate-name covers it: deleting the environment entry fixes both
        message = f"{given.name} is sensitive but set in plain environment (readable with the task definition)"
        fix = f"move {given.name} into the environment's secret and reference it under secrets"
        out.append(finding(expect, "plaintext-secret", view, given, message, fix))
    return out


def rule_duplicate_name(view: ContainerView, expect: Expectations) -> list[Finding]:
    counts = Counter((g.name, g.source) for g in view.given)
    out = []
    for name in sorted({g.name for g in view.given}):
        env_n, sec_n = counts[(name, "environment")], counts[(name, "secrets")]
        if env_n + sec_n < 2:
            continue
        places = " and ".join(f"{n}x in {src}" for src, n in (("environment", env_n), ("secrets", sec_n)) if n)
        keep = "secrets" if sec_n or is_sensitive(name) else "environment"
        message, fix = f"{name} is given {places}", f"keep {name} once, in {keep}"
        out.append(finding(expect, "duplicate-name", view, None, message, fix, name=name))
    return out


# What the real backend does without a required variable (gndumbri/arbiter-ai backend/app/core/environment.py
# refuses to start in production without the first two; the rest are our operational requirements).
CONSEQUENCE = {
    "STRIPE_SECRET_KEY": "the app refuses to start",
    "NEXTAUTH_SECRET": "the app refuses to start",
    "STRIPE_WEBHOOK_SECRET": "the app starts, and answers 503 to every Stripe webhook",
    "DATABASE_URL": "the app starts, and /health reports the database disconnected",
    "REDIS_URL": "the app starts, and /health reports Redis disconnected",
}


def rule_required_missing(view: ContainerView, expect: Expectations) -> list[Finding]:
    if not view.main:
        return []
    names = {g.name for g in view.given}
    if view.role == "backend" and "AUTH_SECRET" in names:
        names.add("NEXTAUTH_SECRET")  # the backend's alias (config.py: AliasChoices("NEXTAUTH_SECRET", "AUTH_SECRET"))

    def crash(name: str) -> str:
        if not expect.production:
            return "the app runs degraded"
        return CONSEQUENCE.get(name, "the app will not work") if view.role == "backend" else "the app will not start"

    return [
        finding(
            expect,
            "required-missing",
            view,
            None,
            f"{name} is required by the {view.service} and not given to container {view.container} ({crash(name)})"
            if view.present
            else f"{name} is required by the {view.service}, whose container {view.container} is not in the task "
            f"definition ({crash(name)})",
            f"map {name} to a key of the environment's secret (config [services.{view.service}.secrets])",
            name=name,
        )
        for name in view.required
        # outside production a missing webhook secret is webhook-unsigned (app_guards), its most specific code
        if name not in names and not (name == "STRIPE_WEBHOOK_SECRET" and not expect.production and view.present)
    ]


CONTAINER_RULES = (
    rule_duplicate_name,
    rule_plaintext_secret,
    rule_required_missing,
    rule_placeholder_value,
    rule_stripe_key_mode,
    rule_weak_secret,
    rule_app_env_mismatch,
    rule_origin_mismatch,
    rule_bad_url,
)
