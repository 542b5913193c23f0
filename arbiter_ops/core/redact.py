"""The redactor: every string the tool prints passes through it, and every secret value a run fetches is
registered with it the moment it arrives, so even a bug that tries to print one prints ``****`` instead.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from typing import Any

MIN_LENGTH = 6  # shorter values are not registered: they would redact ordinary words

# Keys whose values are secret. Plain configuration that the guide also keeps in the secret (APP_ENV,
# AWS_REGION, APP_BASE_URL, ...) is not registered: redacting "production" everywhere would garble output.
SENSITIVE_KEY = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|_KEY$|^KEY$", re.IGNORECASE)
# A URL is secret when it carries a password (DATABASE_URL, REDIS_URL); APP_BASE_URL is public.
URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@:]*:[^/@]+@", re.IGNORECASE)


def forms_of(value: str) -> set[str]:
    """Every form in which a library may quote a secret back: the value itself, percent-decoded and
    percent-encoded (libpq quotes the bad token of a URL, decoded or not), JSON-escaped (a JSON document), and
    for a URL that carries a password, the password alone in each of those forms."""
    forms = {value, urllib.parse.unquote(value), urllib.parse.quote(value, safe=""), urllib.parse.quote(value)}
    for password in url_passwords(value):
        forms |= {password, urllib.parse.unquote(password), urllib.parse.quote(password, safe="")}
    forms |= {json.dumps(f)[1:-1] for f in list(forms)}
    return {f for f in forms if len(f) >= MIN_LENGTH}


def url_passwords(value: str) -> set[str]:
    """What may be the password of ``scheme://user:password@host...``. A password with an unescaped '@' is read
    differently by different parsers (libpq splits at the first '@', others at the last), so every reading, and
    each piece between the '@'s (one parser's password is another's host name), counts."""
    scheme, sep, rest = value.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) or "@" not in rest:
        return set()
    pieces = rest.split("@")
    _user, colon, first = pieces[0].partition(":")
    if not colon:
        return set()
    return {p for p in (first, rest.rsplit("@", 1)[0].partition(":")[2], *pieces[1:-1]) if p}


class Redactor:
    """Replaces registered secret values, in every form :func:`forms_of` knows, in any text. Values shorter
    than 6 characters are not registered (they would redact ordinary words)."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: Any) -> None:
        if isinstance(value, str) and len(value) >= MIN_LENGTH:
            forms = forms_of(value)
            with self._lock:
                self._values |= forms

    def add_payload(self, payload: Any) -> None:
        """Register a fetched secret payload: a JSON object's values under sensitive keys and URLs that
        carry a password, or the whole string when it is not a JSON object."""
        data = payload
        if isinstance(payload, str):
            try:
                data = json.loads(payload)
            except ValueError:
                data = None
        if not isinstance(data, dict):
            self.add(payload)
            return
        for key, value in data.items():
            if SENSITIVE_KEY.search(str(key)) or (isinstance(value, str) and URL_WITH_PASSWORD.match(value)):
                self.add(value if isinstance(value, str) else json.dumps(value))

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def __call__(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            if value in text:
                text = text.replace(value, "****")
        return text


REDACTOR = Redactor()
