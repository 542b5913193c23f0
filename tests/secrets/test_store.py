"""The compare-and-set merge of :mod:`arbiter_ops.secrets.store`, against the sandbox's Secrets Manager over
HTTP. Races are real: another boto3 client writes between our read and our stage move, either driven step
by step or fired by botocore's own ``before-call`` event on our PutSecretValue. Nothing of ours is mocked."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from conftest import sandbox_client

from arbiter_ops.core.errors import ExternalError, Refused
from arbiter_ops.secrets import store as secret_store


@pytest.fixture
def sm(sandbox) -> Any:
    return sandbox_client(sandbox, "secretsmanager")


@pytest.fixture
def other(sandbox) -> Any:
    """The concurrent writer: its own client, as another person's script would have."""
    return sandbox_client(sandbox, "secretsmanager")


@pytest.fixture
def secret_id(sm) -> str:
    name = f"test/cas-{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString=json.dumps({"A": "1", "B": "2"}))
    return name


def current(client: Any, secret_id: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
    return json.loads(client.get_secret_value(SecretId=secret_id, VersionStage=stage)["SecretString"])


def plain_write(client: Any, secret_id: str, **changes: str) -> str:
    """What a careless concurrent writer does: read, change, PutSecretValue (AWSCURRENT moves at once)."""
    payload = current(client, secret_id) | changes
    return str(client.put_secret_value(SecretId=secret_id, SecretString=json.dumps(payload))["VersionId"])


def labels(client: Any, secret_id: str) -> dict[str, list[str]]:
    return client.describe_secret(SecretId=secret_id)["VersionIdsToStages"]


def test_merge_keeps_every_key_and_the_previous_version(sm, secret_id) -> None:
    before = sm.get_secret_value(SecretId=secret_id)["VersionId"]
    result = secret_store.merge_keys(sm, secret_id, {"C": "3"})
    assert result.changed and result.attempts == 1 and result.previous_version_id == before
    assert current(sm, secret_id) == {"A": "1", "B": "2", "C": "3"}
    assert current(sm, secret_id, "AWSPREVIOUS") == {"A": "1", "B": "2"}
    assert labels(sm, secret_id) == {before: ["AWSPREVIOUS"], result.version_id: ["AWSCURRENT"]}


def test_merge_of_unchanged_values_writes_nothing(sm, secret_id) -> None:
    stages = labels(sm, secret_id)
    result = secret_store.merge_keys(sm, secret_id, {"A": "1"})
    assert not result.changed and labels(sm, secret_id) == stages


def test_stage_move_fails_when_another_writer_moved_awscurrent(sm, other, secret_id) -> None:
    """Step by step: read, the other writer writes, we stage and try to move: refused, nothing lost."""
    snapshot = secret_store.read_current(sm, secret_id)
    theirs = plain_write(other, secret_id, THEIRS="x")
    staged = secret_store.stage_pending(sm, secret_id, secret_store.merged(snapshot, {"OURS": "y"}))
    with pytest.raises(secret_store.VersionConflict):
        secret_store.promote(sm, secret_id, staged, snapshot.version_id)
    assert current(sm, secret_id) == {"A": "1", "B": "2", "THEIRS": "x"}  # their write survived
    assert "AWSCURRENT" in labels(sm, secret_id)[theirs]

    # The full merge now re-reads their version and merges into it.
    result = secret_store.merge_keys(sm, secret_id, {"OURS": "y"})
    assert current(sm, secret_id) == {"A": "1", "B": "2", "THEIRS": "x", "OURS": "y"}
    assert result.previous_version_id == theirs and "AWSPREVIOUS" in labels(sm, secret_id)[theirs]
    assert not any("AWSPENDING" in v for v in labels(sm, secret_id).values())


def test_merge_retries_a_race_between_read_and_stage_move(sm, other, secret_id) -> None:
    """The other writer fires from botocore's own event, right when our first PutSecretValue is sent."""
    fired: list[str] = []

    def race(**_: Any) -> None:
        if not fired:
            fired.append(plain_write(other, secret_id, THEIRS="x"))

    sm.meta.events.register("before-call.secretsmanager.PutSecretValue", race)
    conflicts: list[int] = []
    result = secret_store.merge_keys(sm, secret_id, {"OURS": "y"}, on_conflict=conflicts.append)
    assert fired and conflicts == [1] and result.attempts == 2
    assert current(sm, secret_id) == {"A": "1", "B": "2", "THEIRS": "x", "OURS": "y"}
    stages = labels(sm, secret_id)
    assert stages[result.version_id] == ["AWSCURRENT"] and stages[fired[0]] == ["AWSPREVIOUS"]
    assert not any("AWSPENDING" in v for v in stages.values())


def test_endless_races_give_up_bounded_and_lose_nothing(sm, other, secret_id) -> None:
    writes: list[str] = []

    def race(**_: Any) -> None:
        writes.append(plain_write(other, secret_id, **{f"THEIRS_{len(writes)}": "x"}))

    sm.meta.events.register("before-call.secretsmanager.PutSecretValue", race)
    with pytest.raises(ExternalError) as info:
        secret_store.merge_keys(sm, secret_id, {"OURS": "y"}, max_attempts=3)
    assert info.value.code == "secret-conflict" and "3 attempts" in info.value.message
    assert len(writes) == 3  # bounded: exactly max_attempts tries, then a clear error
    final = current(sm, secret_id)
    assert "OURS" not in final and {"THEIRS_0", "THEIRS_1", "THEIRS_2"} <= set(final)
    assert not any("AWSPENDING" in v for v in labels(sm, secret_id).values())


def test_finalize_puts_awsprevious_on_the_replaced_version(sm, secret_id) -> None:
    """For an emulator (or a future API) that does not move AWSPREVIOUS itself, the outcome is AWS's."""
    plain_write(sm, secret_id, B="3")  # now there is an AWSPREVIOUS to move away from
    snapshot = secret_store.read_current(sm, secret_id)
    staged = secret_store.stage_pending(sm, secret_id, secret_store.merged(snapshot, {"C": "4"}))
    secret_store.promote(sm, secret_id, staged, snapshot.version_id)
    stray = next(v for v, s in labels(sm, secret_id).items() if v not in (staged, snapshot.version_id))
    sm.update_secret_version_stage(
        SecretId=secret_id, VersionStage="AWSPREVIOUS", MoveToVersionId=stray, RemoveFromVersionId=snapshot.version_id
    )
    secret_store.finalize(sm, secret_id, staged, snapshot.version_id)
    stages = labels(sm, secret_id)
    assert stages[snapshot.version_id] == ["AWSPREVIOUS"] and stages[staged] == ["AWSCURRENT"]
    assert "AWSPREVIOUS" not in stages.get(stray, [])


@pytest.mark.parametrize(
    ("value", "described"),
    [("just text", "text that is not JSON"), ('["A"]', "a JSON array"), (b"\x00\x01", "binary data")],
)
def test_a_payload_that_is_not_a_json_object_is_refused_unchanged(sm, value, described) -> None:
    name = f"test/notjson-{uuid.uuid4().hex[:8]}"
    kwargs = {"SecretBinary": value} if isinstance(value, bytes) else {"SecretString": value}
    sm.create_secret(Name=name, **kwargs)
    stages = labels(sm, name)
    with pytest.raises(Refused) as info:
        secret_store.merge_keys(sm, name, {"K": "v"})
    assert info.value.code == "secret-not-json" and described in info.value.message
    assert (value if isinstance(value, str) else "\x00") not in info.value.line()
    assert labels(sm, name) == stages


def test_a_missing_secret_is_refused(sm) -> None:
    with pytest.raises(Refused) as info:
        secret_store.merge_keys(sm, "test/does-not-exist", {"K": "v"})
    assert info.value.code == "secret-not-found"


def test_a_refused_write_is_one_clear_error_and_changes_nothing(sandbox, sm, secret_id) -> None:
    sandbox.aws.faults.add({"kind": "error", "operation": "secretsmanager:PutSecretValue", "status": 403, "count": 1})
    stages = labels(sm, secret_id)
    with pytest.raises(ExternalError) as info:
        secret_store.merge_keys(sm, secret_id, {"K": "v"})
    assert "refused PutSecretValue" in info.value.message and secret_id in info.value.message
    assert labels(sm, secret_id) == stages


# moto 5.2.5 alone fails this (its default version stays behind); the sandbox's moto_fixes corrects it.
def test_after_a_stage_move_reads_and_plain_writes_see_the_new_awscurrent(sm, secret_id) -> None:
    secret_store.merge_keys(sm, secret_id, {"C": "3"})
    assert json.loads(sm.get_secret_value(SecretId=secret_id)["SecretString"])["C"] == "3"
    plain_write(sm, secret_id, D="4")
    holders = [v for v, s in labels(sm, secret_id).items() if "AWSCURRENT" in s]
    assert len(holders) == 1 and current(sm, secret_id)["D"] == "4"
