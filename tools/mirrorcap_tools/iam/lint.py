"""Static check of every statement against AWS's Service Authorization Reference.

For each statement: every action exists; every (action, Resource ARN) pair names a resource type the
action is authorized against (or the Resource is `*`); every condition key applies to every action of
the statement on the resource types its ARNs name (or is a global key). One statement granting actions
whose resource types differ therefore fails: some pair names a resource type an action never takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mirrorcap_tools.iam.expansion import Statement
from mirrorcap_tools.iam.reference import Reference, is_global_key, key_matches


@dataclass(frozen=True)
class Finding:
    statement: str  # Statement.label
    problem: str

    def __str__(self) -> str:
        return f"{self.statement}: {self.problem}"


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    statements: int = 0
    action_resource_pairs: int = 0


def lint(statements: list[Statement], reference: Reference) -> LintResult:
    result = LintResult()
    for statement in statements:
        result.statements += 1
        _lint_statement(statement, reference, result)
    return result


def _lint_statement(statement: Statement, reference: Reference, result: LintResult) -> None:
    def finding(problem: str) -> None:
        result.findings.append(Finding(statement.label, problem))

    if statement.not_actions is not None or statement.not_resources is not None:
        finding("NotAction/NotResource: grants more than it names; mirrorcap's policies list what they allow")
        return
    for pattern in statement.actions:
        actions = reference.actions_matching(pattern)
        if not actions:
            finding(f"{pattern}: no such action in the Service Authorization Reference")
            continue
        for action in actions:
            if statement.resources == ["*"]:
                matched = action.resource_types
                result.action_resource_pairs += 1
            else:
                matched = set()
                for arn in statement.resources:
                    result.action_resource_pairs += 1
                    types = reference.resource_types_of(action, arn)
                    if not types:
                        finding(
                            f"{action.full_name} is never authorized against {arn} "
                            f"(its resource types: {sorted(action.resource_types) or 'none: use *'})"
                        )
                    matched |= types
            applicable = action.condition_keys_for(matched)
            for block in statement.condition.values():
                for key in block:
                    if not is_global_key(key) and not any(key_matches(key, listed) for listed in applicable):
                        finding(
                            f"condition key {key} does not apply to {action.full_name} on {sorted(matched)} "
                            f"(AWS lists: {sorted(set(applicable))})"
                        )
