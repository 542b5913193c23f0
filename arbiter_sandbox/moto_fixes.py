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
    _logs_filter_reads_the_stream_prefix()


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


def _logs_filter_reads_the_stream_prefix() -> None:
    """AWS (FilterLogEvents, CloudWatch Logs API reference): ``logStreamNamePrefix`` limits the search to the
    streams whose names start with it (given together with ``logStreamNames`` it is an InvalidParameterException),
    and events of several streams come interleaved in time order (``interleaved`` is ignored and assumed true since
    June 2019). moto 5.2.5 ignores the prefix (every stream of the group is searched) and interleaves only when
    asked. Its ``filterPattern`` support (single terms, several terms, quoted phrases; anything else matches every
    event) is left as it is."""
    import json

    from moto.logs.exceptions import InvalidParameterException
    from moto.logs.responses import LogsResponse

    def filter_log_events(self: Any) -> str:
        name, names = self._get_param("logGroupName"), self._get_param("logStreamNames", [])
        prefix = self._get_param("logStreamNamePrefix")
        group = self.logs_backend.groups.get(name)
        if prefix and group is not None:  # no group: moto's ResourceNotFoundException below
            if names:
                raise InvalidParameterException(msg="logStreamNamePrefix and logStreamNames cannot both be given")
            names = [stream for stream in group.streams if stream.startswith(prefix)]
            if not names:
                return json.dumps({"events": [], "searchedLogStreams": []})
        events, token, searched = self.logs_backend.filter_log_events(
            name,
            names,
            self._get_param("startTime"),
            self._get_param("endTime"),
            self._get_param("limit"),
            self._get_param("nextToken"),
            self._get_param("filterPattern"),
            True,
        )
        return json.dumps({"events": events, "nextToken": token, "searchedLogStreams": searched})

    LogsResponse.filter_log_events = filter_log_events  # type: ignore[method-assign]
