"""The whole IAM check: lint every statement, validate the call table against AWS's data, simulate every
call (and the KMS calls with CollectorKmsKeyArn set), and make sure every forbidden call is denied.

`python -m mirrorcap_tools.iam` prints the counts and every problem; it exits 1 if there is any.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from typing import Any

from mirrorcap_tools.iam.calls import CALLS, FORBIDDEN_CALLS, KMS_CALLS, KMS_KEY, Call
from mirrorcap_tools.iam.expansion import expand
from mirrorcap_tools.iam.lint import lint
from mirrorcap_tools.iam.reference import load_reference
from mirrorcap_tools.iam.simulate import simulate, table_problems
from mirrorcap_tools.template import load_template


@dataclass
class CheckReport:
    statements: int = 0
    action_resource_pairs: int = 0
    simulated_calls: int = 0
    simulated_resources: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"IAM check: {self.statements} statements, {self.action_resource_pairs} action/resource pairs, "
            f"{self.simulated_calls} simulated calls ({self.simulated_resources} resource authorizations), "
            f"{len(self.problems)} problems"
        )


def check(template: dict[str, Any] | None = None, calls: list[Call] | None = None) -> CheckReport:
    reference = load_reference()
    template = copy.deepcopy(template if template is not None else load_template())
    calls = CALLS if calls is None else calls
    report = CheckReport()
    report.problems += [f"call table: {p}" for p in table_problems([*calls, *KMS_CALLS], reference)]
    report.problems += [f"call table: {p}" for p in table_problems(FORBIDDEN_CALLS, reference, complete=False)]
    for parameters, expected_calls in (({}, calls), ({"CollectorKmsKeyArn": KMS_KEY}, KMS_CALLS)):
        stack = expand(template, parameters)
        linted = lint(stack.statements(), reference)
        if not parameters:  # the counts are the default deployment's; the KMS variant adds two statements
            report.statements, report.action_resource_pairs = linted.statements, linted.action_resource_pairs
        report.problems += [f"lint{_label(parameters)}: {f}" for f in linted.findings]
        outcomes = simulate(expected_calls, stack, reference)
        report.simulated_calls += len(expected_calls)
        report.simulated_resources += len(outcomes)
        report.problems += [f"simulation{_label(parameters)}: {o}" for o in outcomes if not o.decision.allowed]
    default = expand(template)
    forbidden = simulate(FORBIDDEN_CALLS, default, reference)
    report.simulated_calls += len(FORBIDDEN_CALLS)
    report.simulated_resources += len(forbidden)
    for outcome in forbidden:
        # The collector's managed policy (not offline) allows parameters: only an explicit Deny is proof.
        explicit = outcome.call.principal != "CollectorRole" or outcome.decision.reason.startswith("explicitly")
        if outcome.decision.allowed or not explicit:
            report.problems += [f"must be denied ({outcome.call.not_observed_because}): {outcome}"]
    for outcome in simulate(KMS_CALLS, default, reference):  # no key, no KMS permission
        if outcome.decision.allowed:
            report.problems += [f"simulation: allowed without CollectorKmsKeyArn: {outcome}"]
    return report


def _label(parameters: dict[str, str]) -> str:
    return "".join(f" [{key} set]" for key in parameters)


def main() -> int:
    report = check()
    for problem in report.problems:
        print(problem)
    print(report.summary())
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
