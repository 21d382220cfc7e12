"""The source locks: one DynamoDB item per source interface, written only if free."""

from __future__ import annotations

from typing import Any

from mirrorcap.aws.translate import translated_errors
from mirrorcap.runtime import aws


@translated_errors
def write_lock_if_free(table: str, source: str, holder: dict[str, str], expires_at: int, at: int) -> bool:
    """Write `source`'s lock for the execution `holder["execution_id"]`. False when another live run holds it."""
    item: dict[str, Any] = {"source": {"S": source}, "expires_at": {"N": str(expires_at)}}
    item.update({name: {"S": value} for name, value in holder.items()})
    try:
        aws().dynamodb.put_item(
            TableName=table,
            Item=item,
            # Free, already this execution's (a retried step), or left by a run that died without
            # teardown. Per execution, not per capture id: a twice-delivered alarm names the same capture.
            ConditionExpression="attribute_not_exists(#source) OR execution_id = :me OR expires_at < :now",
            ExpressionAttributeNames={"#source": "source"},
            ExpressionAttributeValues={":me": {"S": holder["execution_id"]}, ":now": {"N": str(at)}},
        )
    except aws().dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    return True


@translated_errors
def read_lock(table: str, source: str) -> dict[str, str]:
    """The lock's string attributes ({} when there is none)."""
    item = aws().dynamodb.get_item(TableName=table, Key={"source": {"S": source}}, ConsistentRead=True)
    return {name: value["S"] for name, value in item.get("Item", {}).items() if "S" in value}


@translated_errors
def delete_lock_if_held(table: str, source: str, execution_id: str) -> bool:
    """Delete `source`'s lock only if `execution_id` holds it (never another run's lock)."""
    try:
        aws().dynamodb.delete_item(
            TableName=table,
            Key={"source": {"S": source}},
            ConditionExpression="execution_id = :holder",
            ExpressionAttributeValues={":holder": {"S": execution_id}},
        )
    except aws().dynamodb.exceptions.ConditionalCheckFailedException:
        return False  # held by another run now, or already released
    return True


@translated_errors
def all_locks(table: str) -> list[dict[str, str]]:
    pages = aws().dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return [
        {name: value["S"] for name, value in item.items() if "S" in value} for page in pages for item in page["Items"]
    ]
