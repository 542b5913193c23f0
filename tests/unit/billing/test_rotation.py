"""Where a rotation stands, from the endpoints' metadata and the stored secret (pure)."""

from __future__ import annotations

from typing import Any

from arbiter_ops.billing.fingerprint import FINGERPRINT_KEY, fingerprint
from arbiter_ops.billing.rotation import NOTHING, REPLACES_KEY, ROTATION_KEY, find, in_progress, rotation_params
from arbiter_ops.billing.webhook import desired_state

DESIRED = desired_state("https://arbiter-ai.com", "/api/v1/billing/webhooks/stripe", ["a", "b"])
OLD_SECRET, NEW_SECRET = "whsec_" + "o" * 32, "whsec_" + "n" * 32


def ep(id_: str, created: int, secret: str | None = None, **metadata: str) -> dict[str, Any]:
    meta = {"managed_by": "arbiter-ops", **metadata}
    if secret:
        meta[FINGERPRINT_KEY] = fingerprint(secret)
    return {"id": id_, "url": DESIRED.url, "status": "enabled", "enabled_events": ["a", "b"], "metadata": meta,
            "created": created}  # fmt: skip


def statuses(rotation: Any) -> list[str]:
    return [s.status for s in rotation.steps]


def test_no_rotation_in_progress_starts_one_replacing_the_endpoint_in_use() -> None:
    rotation = find(DESIRED, [ep("we_old", 1, OLD_SECRET)], OLD_SECRET)
    assert rotation.old is not None and rotation.old.id == "we_old" and rotation.new is None
    assert not rotation.resumed and statuses(rotation) == ["pending"] * 5
    meta = rotation_params(DESIRED, rotation)["metadata"]
    assert meta[REPLACES_KEY] == "we_old" and meta[ROTATION_KEY] == rotation.rotation_id


def test_new_endpoint_whose_secret_is_stored_resumes_at_the_restart() -> None:
    listed = [ep("we_new", 2, NEW_SECRET, rotation_id="rot_1", rotation_replaces="we_old"), ep("we_old", 1, OLD_SECRET)]
    rotation = find(DESIRED, listed, NEW_SECRET)
    assert rotation.resumed and rotation.rotation_id == "rot_1"
    assert (rotation.old.id, rotation.new.id) == ("we_old", "we_new")  # type: ignore[union-attr]
    assert statuses(rotation) == ["already", "already", "pending", "pending", "pending"]
    assert in_progress(DESIRED, listed)[0].id == "we_new"


def test_new_endpoint_whose_secret_was_lost_is_an_orphan_and_the_rotation_id_is_kept() -> None:
    listed = [ep("we_new", 2, NEW_SECRET, rotation_id="rot_1", rotation_replaces="we_old"), ep("we_old", 1, OLD_SECRET)]
    rotation = find(DESIRED, listed, OLD_SECRET)
    assert rotation.new is None and [o.id for o in rotation.orphans] == ["we_new"]
    assert rotation.old is not None and rotation.old.id == "we_old" and rotation.rotation_id == "rot_1"
    assert statuses(rotation) == ["pending"] * 5


def test_old_endpoint_gone_leaves_only_the_marker_to_clear() -> None:
    rotation = find(DESIRED, [ep("we_new", 2, NEW_SECRET, rotation_id="r", rotation_replaces="we_old")], NEW_SECRET)
    assert rotation.old is None and statuses(rotation)[-1] == "already"
    nothing = find(DESIRED, [ep("we_new", 2, NEW_SECRET, rotation_id="r", rotation_replaces=NOTHING)], NEW_SECRET)
    assert "no endpoint to replace" in nothing.step("delete-old").detail


def test_an_endpoint_not_ours_is_never_taken_for_a_rotation() -> None:
    foreign = ep("we_x", 2, rotation_replaces="we_old")
    foreign["metadata"].pop("managed_by")
    assert in_progress(DESIRED, [foreign, ep("we_old", 1, OLD_SECRET)]) == []
