"""What one capture used and what that costs, estimated from its execution history and its objects.

The prices below are AWS's on-demand list prices in us-east-1, in USD, from the pricing pages for EC2,
VPC (Traffic Mirroring), Step Functions, Lambda and S3 as known when this table was written
(PRICES_AS_OF); they were not re-read from AWS then, so check them before relying on them (docs/cli.md
has the table). Other regions differ by tens of percent; the estimate says which region's prices it used.
Not counted: S3 and SSM requests, the notification, CloudWatch Logs, data transfer (mirrored traffic
crossing AZs is billed as such).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from mirrorcap_tools.e2e.cost import EC2_HOURLY_USD, MINIMUM_BILLED_SECONDS
from mirrorcap_tools.operator.captures import CaptureView
from mirrorcap_tools.template import load_template

PRICES_AS_OF = "2026-12-06"  # the date this table was written
PRICE_REGION = "us-east-1"
MIRROR_SESSION_HOURLY_USD = 0.015
STATE_TRANSITION_USD = 0.025 / 1000
LAMBDA_GB_SECOND_USD = 0.0000166667  # x86
LAMBDA_REQUEST_USD = 0.20 / 1_000_000
S3_GB_MONTH_USD = 0.023
GIB = 1024**3


@dataclass(frozen=True)
class Usage:
    collector_type: str | None
    collector_seconds: float
    session_seconds: float
    state_transitions: int
    lambda_invocations: int
    lambda_gb_seconds: float
    bytes_stored: int


@dataclass(frozen=True)
class CostEstimate:
    usage: Usage
    usd: float
    unpriced: tuple[str, ...]
    prices_as_of: str = PRICES_AS_OF
    price_region: str = PRICE_REGION

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "usd": round(self.usd, 6)}


def function_memory_mb() -> dict[str, int]:
    """Each step's MemorySize from template.yaml (state `X` runs function `XFunction`)."""
    template = load_template()
    default = int(template.get("Globals", {}).get("Function", {}).get("MemorySize", 128))
    memory = {}
    for name, spec in template["Resources"].items():
        if spec.get("Type") == "AWS::Serverless::Function" and name.endswith("Function"):
            memory[name.removesuffix("Function")] = int(spec["Properties"].get("MemorySize", default))
    return memory


def usage_of(view: CaptureView, bytes_stored: int, memory_mb: dict[str, int]) -> Usage:
    collector_from = _first(view.exits.get("LaunchCollector"))
    collector_to = _last(view.exits.get("TeardownCapture")) or view.stopped
    session_from = _first(view.exits.get("CreateMirrorSession"))
    session_to = _first(view.exits.get("TeardownCapture")) or view.stopped  # the first attempt deletes it
    gb_seconds = sum(seconds * memory_mb.get(state, 128) / 1024 for state, seconds in view.task_seconds.items())
    invocations = sum(1 for _ in view.states if _ in memory_mb) + view.retries
    return Usage(
        collector_type=(view.collector or {}).get("instance_type"),
        collector_seconds=_seconds(collector_from, collector_to),
        session_seconds=_seconds(session_from, session_to),
        state_transitions=len(view.states) + view.retries,
        lambda_invocations=invocations,
        lambda_gb_seconds=round(gb_seconds, 3),
        bytes_stored=bytes_stored,
    )


def estimate(usage: Usage) -> CostEstimate:
    unpriced: list[str] = []
    usd = 0.0
    if usage.collector_type and usage.collector_seconds:
        hourly = EC2_HOURLY_USD.get(usage.collector_type)
        if hourly is None:
            unpriced.append(usage.collector_type)
        else:
            usd += hourly * max(usage.collector_seconds, MINIMUM_BILLED_SECONDS) / 3600
    usd += MIRROR_SESSION_HOURLY_USD * usage.session_seconds / 3600
    usd += STATE_TRANSITION_USD * usage.state_transitions
    usd += LAMBDA_GB_SECOND_USD * usage.lambda_gb_seconds + LAMBDA_REQUEST_USD * usage.lambda_invocations
    usd += S3_GB_MONTH_USD * usage.bytes_stored / GIB  # one month of storage
    return CostEstimate(usage=usage, usd=usd, unpriced=tuple(unpriced))


def _first(times: list[datetime] | None) -> datetime | None:
    return times[0] if times else None


def _last(times: list[datetime] | None) -> datetime | None:
    return times[-1] if times else None


def _seconds(start: datetime | None, end: datetime | None) -> float:
    if start is None or end is None:
        return 0.0
    return round(max((end - start).total_seconds(), 0.0), 1)
