"""Corrections to moto where the sandbox must behave like AWS and moto does not (measured on moto 5.2.5).

Applied once per process when an AwsSandbox starts; each fix says what AWS does.
"""

from __future__ import annotations

from typing import Any

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    _secretsmanager_current_follows_the_label()
    _secretsmanager_versions_keep_their_dates()


def _secretsmanager_current_follows_the_label() -> None:
    """AWS: moving AWSCURRENT with UpdateSecretVersionStage makes that version the one GetSecretValue
    returns without a VersionStage, and the one the next PutSecretValue demotes. moto 5.2 keeps its
    `default_version_id` on the old version, so a compare-and-set writer's result is invisible to plain
    readers and a later put leaves two AWSCURRENT versions."""
    from moto.secretsmanager.models import SecretsManagerBackend

    original = SecretsManagerBackend.update_secret_version_stage

    def update_secret_version_stage(
        self: Any, secret_id: str, version_stage: str, remove_from_version_id: str, move_to_version_id: str
    ) -> tuple[str, str]:
        result = original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        if version_stage == "AWSCURRENT" and move_to_version_id:
            secret = self.secrets[secret_id]
            secret.set_default_version_id(move_to_version_id)
        return result

    SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage  # type: ignore[method-assign]


def _secretsmanager_versions_keep_their_dates() -> None:
    """AWS: ListSecretVersionIds gives each version's ``CreatedDate``, when it was stored (what `status` compares
    with a task's start to find stale values). moto 5.2 answers the time of the request for every version."""
    import json

    from moto.secretsmanager.models import SecretsManagerBackend

    original = SecretsManagerBackend.list_secret_version_ids

    def list_secret_version_ids(self: Any, secret_id: str) -> str:
        answer = json.loads(original(self, secret_id))
        versions = self.secrets[secret_id].versions
        for version in answer.get("Versions", []):
            created = versions.get(version.get("VersionId"), {}).get("createdate")
            if created is not None:
                version["CreatedDate"] = created
        return json.dumps(answer)

    SecretsManagerBackend.list_secret_version_ids = list_secret_version_ids  # type: ignore[method-assign]
