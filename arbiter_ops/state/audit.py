"""Audit records in the state table: every deploy, rollback and migration, under ``<kind>#<env>`` sorted by
time, so "the latest" is one Query. `status` shows them; `rollback` finds the revision a deploy replaced;
`history` lists them (:func:`newest`); `prune` keeps the revision they name as the way back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arbiter_ops.core.aws import call, error_code
from arbiter_ops.state.lock import caller_name, now_iso, table_missing

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context


def record(ctx: Context, kind: str, data: dict[str, Any]) -> None:
    """Append an audit record (kind: "deploy" or "migrate")."""
    from botocore.exceptions import ClientError

    stamp = now_iso()
    item = {
        "pk": {"S": f"{kind}#{ctx.env_name}"},
        # Microseconds keep two records of the same second in order; the suffix keeps them distinct.
        "sk": {"S": f"{datetime.now(UTC).isoformat(timespec='microseconds')}#{uuid.uuid4().hex[:8]}"},
        "at": {"S": stamp},
        "who": {"S": caller_name(ctx)},
        "data": {"S": json.dumps(data, default=str)},
    }
    try:
        call(ctx.client("dynamodb").put_item, TableName=ctx.config.state_table, Item=item)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise table_missing(ctx) from None
        raise


def latest(ctx: Context, kind: str, limit: int = 1) -> list[dict[str, Any]]:
    """The most recent audit records of a kind, newest first (empty if the table is missing)."""
    from botocore.exceptions import ClientError

    try:
        resp = call(
            ctx.client("dynamodb").query,
            TableName=ctx.config.state_table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"{kind}#{ctx.env_name}"}},
            ScanIndexForward=False,
            Limit=limit,
        )
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return []
        raise
    out = []
    for item in resp.get("Items", []):
        entry = json.loads(item["data"]["S"])
        entry.setdefault("at", item["at"]["S"])
        entry.setdefault("who", item["who"]["S"])
        out.append(entry)
    return out


KINDS = ("deploy", "migrate", "run", "stripe-webhook")  # every kind a command records (rollbacks are "deploy")
PAGE = 50  # records per Query page while looking for the ones that match


def newest(
    ctx: Context, kinds: Iterable[str] = KINDS, limit: int = 20, keep: Callable[[dict[str, Any]], bool] | None = None
) -> list[dict[str, Any]]:
    """The newest ``limit`` records of these kinds together (those ``keep`` accepts), newest first; each with its
    ``kind``. One Query per kind and page; a kind is read only as far as needed. Empty if the table is missing."""
    found: list[tuple[str, dict[str, Any]]] = []
    for kind in kinds:
        matched = 0
        for sort_key, entry in _pages(ctx, kind):
            if keep is None or keep(entry):
                found.append((sort_key, {"kind": kind, **entry}))
                matched += 1
                if matched >= limit:
                    break
    found.sort(key=lambda pair: pair[0], reverse=True)  # the sort keys are UTC times to the microsecond
    return [entry for _, entry in found[:limit]]


def _pages(ctx: Context, kind: str) -> Iterable[tuple[str, dict[str, Any]]]:
    from botocore.exceptions import ClientError

    kwargs: dict[str, Any] = {
        "TableName": ctx.config.state_table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"{kind}#{ctx.env_name}"}},
        "ScanIndexForward": False,
        "Limit": PAGE,
    }
    while True:
        try:
            resp = call(ctx.client("dynamodb").query, **kwargs)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return
            raise
        for item in resp.get("Items", []):
            entry = json.loads(item["data"]["S"])
            entry.setdefault("at", item["at"]["S"])
            entry.setdefault("who", item["who"]["S"])
            yield item["sk"]["S"], entry
        if not resp.get("LastEvaluatedKey"):
            return
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def record_quietly(ctx: Context, kind: str, data: dict[str, Any]) -> None:
    """Append an audit record that also names the AWS caller; a failure to write it is a warning, since the
    run's own outcome matters more than its record."""
    try:
        record(ctx, kind, {**data, "caller": caller_arn(ctx)})
    except Exception as exc:
        ctx.output.warn(f"could not write the audit record: {getattr(exc, 'message', exc)}")


def caller_arn(ctx: Context) -> str:
    """Who the AWS credentials belong to (STS), for the record; "unknown" when STS will not say."""
    try:
        return str(call(ctx.client("sts").get_caller_identity)["Arn"])
    except Exception:  # the record still says who by user name
        return "unknown"
