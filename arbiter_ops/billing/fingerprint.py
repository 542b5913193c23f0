"""How arbiter-ops marks the Stripe webhook endpoints it manages, and proves later which signing secret belongs to
which endpoint without storing or printing the secret: an HMAC of a fixed label under the secret, kept in the
endpoint's metadata. Pure, so that the sandbox's seed marks its endpoint exactly as `stripe-webhook` does.
"""

from __future__ import annotations

import hashlib
import hmac

MANAGED_BY = "arbiter-ops"  # metadata[managed_by] of endpoints arbiter-ops created
MANAGED_BY_KEY = "managed_by"
FINGERPRINT_KEY = "secret_fingerprint"
_FINGERPRINT_LABEL = b"arbiter-ops stripe webhook secret fingerprint v1"


def fingerprint(secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]
