"""The per-environment deploy lock, in the state table (:mod:`arbiter_ops.state.table`).

The lock is a compare-and-set on DynamoDB (conditional writes; never read-then-write): acquiring puts the
lock item only if none exists or the existing one expired; renewing and releasing succeed only for the
holder's token. Audit records (deploys, migrations) are items under ``<kind>#<env>`` sorted by time, so
"the latest" is one Query.

Table: partition key ``pk`` (S), sort key ``sk`` (S); ``expires_at`` is the TTL attribute.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arbiter_ops.core.aws import call, error_code
from arbiter_ops.core.errors import ExternalError, LockHeld
from arbiter_ops.state.table import create_table_request, ttl_request

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

LOCK_TTL = 900.0  # seconds: a crashed deploy's lock expires by itself
LOCK_SK = "lock"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def table_missing(ctx: Context) -> ExternalError:
    return ExternalError(
        f"the arbiter-ops state table {ctx.config.state_table!r} does not exist in {ctx.region}",
        hint=f"create it once with `arbiter-ops --env {ctx.env_name} bootstrap`",
        code="no-state-table",
    )


def ensure_table(dynamodb: Any, name: str) -> bool:
    """Create the table if missing (idempotent). Returns True if it was created."""
    from botocore.exceptions import ClientError

    try:
        call(dynamodb.describe_table, TableName=name)
        return False
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
    call(dynamodb.create_table, **create_table_request(name))
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    call(dynamodb.update_time_to_live, **ttl_request(name))
    return True


def caller_name(ctx: Context) -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return os.environ.get("GITHUB_ACTOR") or user


@dataclass
class Lock:
    """A held lock; ``release()`` is idempotent and a renewal thread keeps a long deploy's lock alive."""

    ctx: Context
    env: str
    token: str
    holder: dict[str, str]
    ttl: float = LOCK_TTL
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    released: bool = False

    def start_renewal(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name="lock-renewal", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
            except Exception as exc:  # the deploy goes on; the next renewal may succeed
                self.ctx.output.warn(f"could not renew the deploy lock: {exc}")

    def renew(self) -> None:
        call(
            self.ctx.client("dynamodb").update_item,
            TableName=self.ctx.config.state_table,
            Key={"pk": {"S": f"lock#{self.env}"}, "sk": {"S": LOCK_SK}},
            UpdateExpression="SET expires_at = :e",
            ConditionExpression="#t = :t",
            ExpressionAttributeNames={"#t": "token"},
            ExpressionAttributeValues={":e": {"N": str(int(time.time() + self.ttl))}, ":t": {"S": self.token}},
        )

    def release(self) -> None:
        from botocore.exceptions import ClientError

        self._stop.set()
        if self.released:
            return
        try:
            call(
                self.ctx.client("dynamodb").delete_item,
                TableName=self.ctx.config.state_table,
                Key={"pk": {"S": f"lock#{self.env}"}, "sk": {"S": LOCK_SK}},
                ConditionExpression="#t = :t",
                ExpressionAttributeNames={"#t": "token"},
                ExpressionAttributeValues={":t": {"S": self.token}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":  # someone forced it: not ours anymore
                raise
        self.released = True


def describe_holder(item: dict[str, Any]) -> str:
    who = item.get("who", {}).get("S", "?")
    host = item.get("host", {}).get("S", "?")
    command = item.get("command", {}).get("S", "?")
    since = item.get("since", {}).get("S", "?")
    return f"{who}@{host} ({command}, since {since})"


def acquire_lock(ctx: Context, command: str, wait: float = 0.0, ttl: float = LOCK_TTL) -> Lock:
    """Take the environment's deploy lock, waiting up to ``wait`` seconds for a holder to finish."""
    from botocore.exceptions import ClientError

    env = ctx.env_name
    token = uuid.uuid4().hex
    holder = {"who": caller_name(ctx), "host": socket.gethostname(), "pid": str(os.getpid()), "command": command}
    deadline = time.monotonic() + wait
    delay = 1.0
    while True:
        now = time.time()
        item = {
            "pk": {"S": f"lock#{env}"},
            "sk": {"S": LOCK_SK},
            "token": {"S": token},
            "since": {"S": now_iso()},
            "expires_at": {"N": str(int(now + ttl))},
            **{k: {"S": v} for k, v in holder.items()},
        }
        try:
            call(
                ctx.client("dynamodb").put_item,
                TableName=ctx.config.state_table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return Lock(ctx, env, token, holder, ttl)
        except ClientError as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException":
                raise table_missing(ctx) from None
            if code != "ConditionalCheckFailedException":
                raise
            current = exc.response.get("Item") or {}
        if time.monotonic() + delay > deadline:
            who = describe_holder(current) if current else "another run"
            raise LockHeld(
                f"{env} is locked by {who}",
                hint="wait for it (--lock-wait SECONDS), or clear a crashed run's lock with "
                "`arbiter-ops unlock --force`",
            )
        ctx.output.info(f"waiting for the {env} lock held by {describe_holder(current)} ...")
        time.sleep(delay)
        delay = min(delay * 2, 10.0)


def force_unlock(ctx: Context) -> dict[str, Any] | None:
    """Delete the lock whoever holds it; returns the removed holder (None if there was no lock)."""
    from botocore.exceptions import ClientError

    try:
        resp = call(
            ctx.client("dynamodb").delete_item,
            TableName=ctx.config.state_table,
            Key={"pk": {"S": f"lock#{ctx.env_name}"}, "sk": {"S": LOCK_SK}},
            ReturnValues="ALL_OLD",
        )
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise table_missing(ctx) from None
        raise
    return resp.get("Attributes")


def lock_holder(ctx: Context) -> str | None:
    """Who holds the environment's lock now (None when free, expired, or the table is missing)."""
    from botocore.exceptions import ClientError

    try:
        resp = call(
            ctx.client("dynamodb").get_item,
            TableName=ctx.config.state_table,
            Key={"pk": {"S": f"lock#{ctx.env_name}"}, "sk": {"S": LOCK_SK}},
        )
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    item = resp.get("Item")
    if not item or float(item.get("expires_at", {}).get("N", "0")) < time.time():
        return None
    return describe_holder(item)
