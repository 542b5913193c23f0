"""Where a `stripe-webhook --rotate` stands, read from what Stripe shows (pure: endpoints and the stored secret in).

A rotation without a gap keeps the old endpoint until the backend's tasks hold the new secret (ECS injects
secrets only at task start; the real app verifies one STRIPE_WEBHOOK_SECRET): create the new endpoint, store its
secret, restart the backend and wait for it, check, and only then delete the old endpoint. Meanwhile Stripe
delivers every event to both endpoints, each signed with its own secret, so the app accepts one of the two.

The new endpoint carries the rotation in its metadata: ``rotation_id``, ``rotation_replaces`` (the old
endpoint's id, removed when the rotation is over) and ``rotation_restart`` (the backend deployment it started),
besides our marker and the secret's fingerprint
(:mod:`arbiter_ops.billing.fingerprint`). So a re-run after an interruption at any step knows:

- no endpoint replaces another: no rotation in progress (a new one starts);
- an endpoint replaces another, and the stored secret's fingerprint is its own: created and stored (the restart
  is judged from ECS: do the backend's running tasks predate the secret's current version?);
- an endpoint replaces another, and the stored secret is not its own: its secret was lost with the process that
  created it (Stripe shows a secret only on create), so it is deleted and created again: never a third endpoint;
- the replaced endpoint is gone: only the marker is left to clear.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from arbiter_ops.billing.fingerprint import FINGERPRINT_KEY, fingerprint
from arbiter_ops.billing.webhook import Desired, Endpoint, choose_primary, create_params

ROTATION_KEY = "rotation_id"
REPLACES_KEY = "rotation_replaces"
RESTART_KEY = "rotation_restart"  # the backend deployment the rotation started
NOTHING = "-"  # rotation_replaces of a rotation that found no endpoint to replace
STEPS = ("create", "store-secret", "restart", "check", "delete-old")
WORDS = {
    "create": "create the new endpoint (same URL and events)",
    "store-secret": "store its signing secret as STRIPE_WEBHOOK_SECRET (compare-and-set)",
    "restart": "restart the backend (forceNewDeployment) and wait for its tasks",
    "check": "check the endpoint and the stored secret (`stripe-webhook --check`)",
    "delete-old": "delete the old endpoint",
}


def new_rotation_id() -> str:
    return time.strftime("rot_%Y%m%dT%H%M%SZ_", time.gmtime()) + secrets.token_hex(3)


@dataclass
class Step:
    name: str
    status: str = "pending"  # pending | done (now) | already (by an earlier run) | would (dry run) | failed | skipped
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail or None}

    @property
    def finished(self) -> bool:
        return self.status in ("done", "already", "skipped")


@dataclass
class Rotation:
    rotation_id: str
    old: Endpoint | None  # the endpoint being replaced, while Stripe still has it
    new: Endpoint | None  # the rotation's endpoint whose secret is stored
    orphans: list[Endpoint]  # endpoints of an interrupted rotation whose secret was never stored
    resumed: bool
    steps: list[Step] = field(default_factory=lambda: [Step(name) for name in STEPS])

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def current(self) -> Step | None:
        """The first step not finished (None: all are)."""
        return next((s for s in self.steps if not s.finished), None)

    def standing(self) -> str:
        """Where the rotation stands, in one sentence (for an interruption or a failure)."""
        done = [s.name for s in self.steps if s.finished]
        at = self.current()
        old = f"the old endpoint {self.old.id} still receives every event" if self.old else "the old endpoint is gone"
        new = f"new endpoint {self.new.id}" if self.new else "no new endpoint with a stored secret yet"
        return (
            f"rotation {self.rotation_id} {'stopped at ' + at.name if at else 'finished'} "
            f"(done: {', '.join(done) or 'nothing'}; {new}; {old})"
        )

    def dry_run(self) -> None:
        for step in self.steps:
            step.status = step.status if step.finished else "would"

    def others(self, duplicates: list[Endpoint]) -> list[Endpoint]:
        """The endpoints on the URL that are not the rotation's: a plain run's duplicates."""
        ours = {e.id for e in (self.old, self.new, *self.orphans) if e is not None}
        return [d for d in duplicates if d.id not in ours]

    def changes(self) -> int:
        return sum(1 for s in self.steps if s.status in ("done", "would"))

    def lines(self) -> list[str]:
        """One line per step, for the text result."""
        mark = {"done": "done", "already": "already done", "would": "would", "failed": "FAILED", "pending": "not run"}
        return [
            f"rotation step {s.name}: {mark.get(s.status, s.status)}" + (f" ({s.detail})" if s.detail else "")
            for s in self.steps
        ]

    def actions_json(self) -> list[dict[str, Any]]:
        """The steps as the JSON document's ``actions`` (``done``: finished by this run or an earlier one)."""
        target = {"create": self.new, "store-secret": self.new, "check": self.new, "delete-old": self.old}
        return [
            {
                "action": s.name,
                "endpoint": ep.id if (ep := target.get(s.name)) else None,
                "reason": s.detail or WORDS[s.name],
                "done": s.status in ("done", "already"),
            }
            for s in self.steps
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.rotation_id,
            "resumed": self.resumed,
            "old_endpoint": self.old.id if self.old else None,
            "new_endpoint": self.new.id if self.new else None,
            "steps": [s.as_json() for s in self.steps],
        }


def stored_fingerprint(stored_secret: Any) -> str | None:
    return fingerprint(stored_secret) if isinstance(stored_secret, str) and stored_secret.startswith("whsec_") else None


def rotating(endpoints: list[Endpoint]) -> list[Endpoint]:
    """Endpoints a rotation created and has not finished (they still name the endpoint they replace)."""
    return [ep for ep in endpoints if ep.managed and ep.metadata.get(REPLACES_KEY)]


def in_progress(desired: Desired, listed: list[dict[str, Any]]) -> list[Endpoint]:
    """The rotation endpoints on the URL: a plain run must not treat the endpoint they replace as a duplicate."""
    return rotating([ep for ep in (Endpoint.from_stripe(o) for o in listed) if ep.url == desired.url])


def find(desired: Desired, listed: list[dict[str, Any]], stored_secret: Any) -> Rotation:
    """The rotation to run: the one in progress (resumed), else a new one replacing the endpoint in use."""
    # Stripe lists newest first; oldest first makes ties (same second) go to the older endpoint, as plan() does.
    endpoints = [Endpoint.from_stripe(o) for o in reversed(listed)]
    same_url = sorted((ep for ep in endpoints if ep.url == desired.url), key=_age)
    by_id = {ep.id: ep for ep in same_url}
    printed = stored_fingerprint(stored_secret)
    ongoing = rotating(same_url)
    if not ongoing:
        old = choose_primary(same_url, desired, stored_secret)
        return Rotation(new_rotation_id(), old, None, [], resumed=False)
    holders = [ep for ep in ongoing if printed and ep.metadata.get(FINGERPRINT_KEY) == printed]
    new = holders[-1] if holders else None
    orphans = [ep for ep in ongoing if ep is not new]
    lead = new or orphans[-1]
    rotation = Rotation(
        lead.metadata.get(ROTATION_KEY) or new_rotation_id(),
        by_id.get(lead.metadata.get(REPLACES_KEY, "")),
        new,
        orphans,
        resumed=True,
    )
    if new is not None:
        rotation.step("create").status = "already"
        rotation.step("create").detail = f"endpoint {new.id} created by an earlier run"
        rotation.step("store-secret").status = "already"
        rotation.step("store-secret").detail = f"the stored STRIPE_WEBHOOK_SECRET is endpoint {new.id}'s (fingerprint)"
    if rotation.old is None:
        replaced = lead.metadata.get(REPLACES_KEY)
        rotation.step("delete-old").status = "already"
        rotation.step("delete-old").detail = (
            "there was no endpoint to replace" if replaced == NOTHING else f"{replaced} already deleted"
        )
    return rotation


def rotation_params(desired: Desired, rotation: Rotation) -> dict[str, Any]:
    """The create parameters of the rotation's new endpoint: the desired ones plus the rotation's metadata."""
    params = create_params(desired)
    replaces = rotation.old.id if rotation.old is not None else NOTHING
    params["metadata"] = {**params["metadata"], ROTATION_KEY: rotation.rotation_id, REPLACES_KEY: replaces}
    return params


def _age(ep: Endpoint) -> int:
    return ep.created
