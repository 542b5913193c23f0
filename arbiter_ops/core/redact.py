"""The redactor: every string the tool prints passes through it, and every secret value a run fetches is
registered with it the moment it arrives, so even a bug that tries to print one prints ``****`` instead.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

# Keys whose values are secret. Plain configuration that the guide also keeps in the secret (APP_ENV,
# AWS_REGION, APP_BASE_URL, ...) is not registered: redacting "production" everywhere would garble output.
SENSITIVE_KEY = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|_KEY$|^KEY$", re.IGNORECASE)
# A URL is secret when it carries a password (DATABASE_URL, REDIS_URL); APP_BASE_URL is public.
URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@:]*:[^/@]+@", re.IGNORECASE)


class Redactor:
    """Replaces registered secret values in any text. Values shorter than 6 characters are not
    registered (they would redact ordinary words); such values are never printed anyway."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: Any) -> None:
        if isinstance(value, str) and len(value) >= 6:
            with self._lock:
                self._values.add(value)

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
