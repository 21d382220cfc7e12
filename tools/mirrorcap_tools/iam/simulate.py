"""Simulate each declared call against its principal's policies, resource by resource, as IAM would.

The context of one resource is built from AWS's table, not from the call table alone: a key reaches a
resource only if AWS lists it for that action and resource type (or for the action itself, or it is a
global key). Tags fill the ResourceTag keys AWS lists (aws:ResourceTag, ec2:ResourceTag,
ssm:resourceTag...) with the tags that resource has, and the RequestTag keys with the tags the call
creates it with. So an entry cannot make a condition hold that AWS would not even evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass

from mirrorcap_tools.iam.calls import NOT_APPLICABLE_REQUIRED_TYPES, Call, Resource
from mirrorcap_tools.iam.evaluate import ContextValue, Decision, decide
from mirrorcap_tools.iam.expansion import Stack
from mirrorcap_tools.iam.reference import Action, Reference, is_global_key, key_matches


@dataclass(frozen=True)
class Outcome:
    call: Call
    resource: Resource
    decision: Decision

    def __str__(self) -> str:
        verdict = "allowed" if self.decision.allowed else "DENIED"
        return f"{self.call.principal} {self.call.action} on {self.resource.arn}: {verdict}: {self.decision.reason}"


def table_problems(calls: list[Call], reference: Reference, *, complete: bool = True) -> list[str]:
    """What in the table contradicts AWS's data: unknown actions, resource types the action is not
    authorized against, required ones missing (unless not `complete`: a forbidden call names only the
    resource that must be refused), example ARNs of the wrong format, keys AWS never evaluates."""
    problems = []
    for call in calls:
        action = reference.action(call.action)
        if action is None:
            problems.append(f"{call.action}: no such action")
            continue
        named = {r.type for r in call.resources}
        exempt = {rt for (name, rt) in NOT_APPLICABLE_REQUIRED_TYPES if name == action.full_name}
        if complete and (missing := action.required_resource_types - named - exempt):
            problems.append(f"{call.principal} {call.action}: AWS also authorizes it against {sorted(missing)}")
        for resource in call.resources:
            if resource.type and resource.type not in action.resource_types:
                problems.append(f"{call.action} is not authorized against {resource.type!r}")
                continue
            resource_type = reference.resource_type(action.service, resource.type) if resource.type else None
            if resource_type is not None and not resource_type.matches(resource.arn):
                problems.append(f"{call.action}: {resource.arn} is not a {resource.type} ARN")
        for key in call.context:
            applicable = action.condition_keys_for(named)
            if not is_global_key(key) and not any(key_matches(key, listed) for listed in applicable):
                problems.append(f"{call.action}: AWS does not evaluate {key} for it")
    return problems


def resource_context(call: Call, action: Action, resource: Resource) -> dict[str, ContextValue]:
    listed = action.condition_keys_for({resource.type} if resource.type else set())
    candidates: dict[str, ContextValue] = {**call.context, **resource.context}
    for key in listed:
        if key.lower().endswith("resourcetag/${tagkey}"):
            prefix = key[: -len("${TagKey}")]
            candidates.update({f"{prefix}{tag}": value for tag, value in resource.tags.items()})
        if key.lower() == "aws:requesttag/${tagkey}" and resource.request_tags is not None:
            candidates.update({f"aws:RequestTag/{tag}": value for tag, value in resource.request_tags.items()})
        if key.lower() == "aws:tagkeys" and resource.request_tags is not None:
            candidates["aws:TagKeys"] = sorted(resource.request_tags)
    return {
        key: value
        for key, value in candidates.items()
        if is_global_key(key) or any(key_matches(key, entry) for entry in listed)
    }


def simulate(calls: list[Call], stack: Stack, reference: Reference) -> list[Outcome]:
    outcomes = []
    for call in calls:
        action = reference.action(call.action)
        if action is None:
            raise ValueError(f"{call.action}: no such action")
        statements = stack.role_of(call.principal).statements
        for resource in call.resources:
            context = resource_context(call, action, resource)
            outcomes.append(Outcome(call, resource, decide(statements, call.action, resource.arn, context)))
    return outcomes
