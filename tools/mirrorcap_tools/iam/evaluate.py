"""IAM's decision for one request, from identity-policy statements.

A request is (action, resource ARN, request context). It is allowed when some Allow statement matches
the action, the resource and all of its conditions, and no Deny statement matches
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html). Conditions:
each operator in a block must hold, each key in an operator must hold, any of a key's values may match
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mirrorcap_tools.iam.expansion import Statement

ContextValue = str | bool | list[str]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def decide(statements: list[Statement], action: str, resource: str, context: dict[str, ContextValue]) -> Decision:
    lowered = {key.lower(): value for key, value in context.items()}
    matching = [s for s in statements if _applies(s, action, resource) and conditions_hold(s.condition, lowered)]
    denied = [s.label for s in matching if s.effect == "Deny"]
    if denied:
        return Decision(False, f"explicitly denied by {denied}")
    allowed = [s.label for s in matching if s.effect == "Allow"]
    if allowed:
        return Decision(True, f"allowed by {allowed}")
    return Decision(False, "no Allow statement matches (implicit deny)")


def _applies(statement: Statement, action: str, resource: str) -> bool:
    if statement.not_actions is not None:
        action_matches = not any(_glob(action.lower(), p.lower()) for p in statement.not_actions)
    else:
        action_matches = any(_glob(action.lower(), p.lower()) for p in statement.actions)
    if statement.not_resources is not None:
        return action_matches and not any(_glob(resource, p) for p in statement.not_resources)
    return action_matches and any(_glob(resource, p) for p in statement.resources)


def _glob(value: str, pattern: str) -> bool:
    """IAM's `*` and `?` (fnmatch's [..] classes do not exist in IAM: escape them)."""
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def conditions_hold(condition: dict[str, dict[str, Any]], context: dict[str, ContextValue]) -> bool:
    return all(
        _operator_holds(operator, key.lower(), values, context)
        for operator, block in condition.items()
        for key, values in block.items()
    )


def _operator_holds(operator: str, key: str, expected: Any, context: dict[str, ContextValue]) -> bool:
    expected = [str(v) for v in (expected if isinstance(expected, list) else [expected])]
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    present = key in context
    if base == "Null":  # "true": the key must be absent
        return any(value.lower() == str(not present).lower() for value in expected)
    negated = base.startswith(("StringNot", "ArnNot")) or base == "NumericNotEquals"
    if not present:
        # A missing key fails a condition, except with IfExists or a negated operator (nothing to differ
        # from), and ForAllValues holds over no values.
        return if_exists or negated or qualifier == "ForAllValues"
    actual = context[key]
    values = [str(v) for v in actual] if isinstance(actual, list) else [_text(actual)]
    compare = _COMPARISONS[base.replace("Not", "", 1) if negated else base]
    matches = [any(compare(value, e) for e in expected) for value in values]
    if qualifier == "ForAllValues":
        return all(not m for m in matches) if negated else all(matches)
    # ForAnyValue, and single-valued keys
    return any(not m for m in matches) if negated else any(matches)


def _text(value: ContextValue) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _arn_like(value: str, pattern: str) -> bool:
    value_fields, pattern_fields = value.split(":", 5), pattern.split(":", 5)
    return len(value_fields) == len(pattern_fields) and all(
        _glob(v, p) for v, p in zip(value_fields, pattern_fields, strict=True)
    )


_COMPARISONS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda value, expected: value == expected,
    "StringEqualsIgnoreCase": lambda value, expected: value.lower() == expected.lower(),
    "StringLike": _glob,
    "ArnEquals": _arn_like,  # IAM treats ArnEquals and ArnLike alike (wildcards in both)
    "ArnLike": _arn_like,
    "Bool": lambda value, expected: value.lower() == expected.lower(),
    "NumericEquals": lambda value, expected: float(value) == float(expected),
    "NumericLessThan": lambda value, expected: float(value) < float(expected),
    "NumericLessThanEquals": lambda value, expected: float(value) <= float(expected),
    "NumericGreaterThan": lambda value, expected: float(value) > float(expected),
    "NumericGreaterThanEquals": lambda value, expected: float(value) >= float(expected),
}
