"""The arbiter-ops state table's schema: one DynamoDB table per account holds every environment's deploy lock
and audit records. Pure data, so that `bootstrap` and the sandbox's seed create the very same table.

Partition key ``pk`` (S), sort key ``sk`` (S); ``expires_at`` is the TTL attribute (a crashed run's lock
expires by itself).
"""

from __future__ import annotations

from typing import Any

TTL_ATTRIBUTE = "expires_at"


def create_table_request(name: str) -> dict[str, Any]:
    """The CreateTable parameters of the state table named ``name``."""
    return {
        "TableName": name,
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def ttl_request(name: str) -> dict[str, Any]:
    """The UpdateTimeToLive parameters that make ``expires_at`` the table's TTL attribute."""
    return {"TableName": name, "TimeToLiveSpecification": {"Enabled": True, "AttributeName": TTL_ATTRIBUTE}}
