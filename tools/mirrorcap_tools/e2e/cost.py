"""A rough cost of one e2e run, from what it ran and for how long.

Prices are AWS's on-demand list prices in us-east-1 (Linux), in USD, as published on
https://aws.amazon.com/ec2/pricing/on-demand/ and https://aws.amazon.com/step-functions/pricing/ when
this was written; other regions differ by a few tens of percent. EC2 bills Linux instances per second
with a 60-second minimum. What the run does not count: the few Lambda invocations, S3 requests and
CloudFormation (free tier or fractions of a cent), and whatever the sandbox VPC costs anyway (a NAT
gateway or interface endpoints are billed by the hour whether or not the test runs).
"""

from __future__ import annotations

from dataclasses import dataclass

EC2_HOURLY_USD = {
    "t3.micro": 0.0104,
    "t3.small": 0.0208,
    "t3.medium": 0.0416,
    "t3.large": 0.0832,
    "t4g.micro": 0.0084,
    "t4g.small": 0.0168,
    "t4g.medium": 0.0336,
    "m5.large": 0.096,
    "c5.large": 0.085,
}
STATE_TRANSITION_USD = 0.025 / 1000
MINIMUM_BILLED_SECONDS = 60


@dataclass(frozen=True)
class InstanceUse:
    role: str  # "source", "collector"
    instance_type: str
    seconds: float


@dataclass(frozen=True)
class CostEstimate:
    lines: list[str]
    total_usd: float
    unpriced: list[str]

    def text(self) -> str:
        unknown = f" (no price for {', '.join(self.unpriced)}: not counted)" if self.unpriced else ""
        return "\n".join([*self.lines, f"about ${self.total_usd:.4f} in all{unknown}"])


def estimate_cost(instances: list[InstanceUse], state_transitions: int) -> CostEstimate:
    lines, total, unpriced = [], 0.0, []
    for use in instances:
        billed = max(use.seconds, MINIMUM_BILLED_SECONDS)
        hourly = EC2_HOURLY_USD.get(use.instance_type)
        if hourly is None:
            unpriced.append(use.instance_type)
            lines.append(f"{use.role} {use.instance_type}: {billed:.0f} s, price unknown")
            continue
        cost = hourly * billed / 3600
        total += cost
        lines.append(f"{use.role} {use.instance_type}: {billed:.0f} s at ${hourly}/h = ${cost:.4f}")
    transitions = state_transitions * STATE_TRANSITION_USD
    total += transitions
    lines.append(f"{state_transitions} state transitions = ${transitions:.4f}")
    return CostEstimate(lines=lines, total_usd=total, unpriced=unpriced)
