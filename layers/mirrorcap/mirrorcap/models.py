"""Models at every boundary of the workflow: trigger inputs, the resolved request, each step's output.

Trigger inputs are strict (unknown fields are rejected, so a typo is an error rather than a silently
ignored option); step outputs are what the state machine carries from one state to the next.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from mirrorcap.naming import CAPTURE_ID_PATTERN

if TYPE_CHECKING:  # boto3's type stubs: a development dependency, for the type checker only
    from mypy_boto3_ec2.type_defs import (
        CreateTrafficMirrorFilterRuleRequestTypeDef,
        TrafficMirrorPortRangeRequestTypeDef,
    )

MAX_FILTER_RULES = 10  # AWS: rules per traffic mirror filter, not adjustable
MAX_PACKET_LENGTH = 8500

InstanceId = Annotated[str, StringConstraints(pattern=r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")]
NetworkInterfaceId = Annotated[str, StringConstraints(pattern=r"^eni-(?:[0-9a-f]{8}|[0-9a-f]{17})$")]
CaptureId = Annotated[str, StringConstraints(pattern=CAPTURE_ID_PATTERN.pattern)]
TagText = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\w .:/=+@-]+$")]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class StepModel(BaseModel):
    """Data the workflow passes between states: tolerant of fields added by later versions."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# --- The capture filter ---------------------------------------------------------------------------------


def _parse_port_range(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a port is a number from 1 to 65535")
    if isinstance(value, int):
        value = {"from_port": value, "to_port": value}
    elif isinstance(value, str):
        low, sep, high = value.partition("-")
        try:
            value = {"from_port": int(low), "to_port": int(high if sep else low)}
        except ValueError:
            raise ValueError(f"{value!r} is not a port or a range like 8000-8080") from None
    if isinstance(value, dict):
        for port in (value.get("from_port"), value.get("to_port")):
            if isinstance(port, int) and not 1 <= port <= 65535:
                raise ValueError(f"{port} is not a port (1-65535)")
    return value


class PortRange(StrictModel):
    from_port: int = Field(ge=1, le=65535)
    to_port: int = Field(ge=1, le=65535)

    @model_validator(mode="after")
    def _ordered(self) -> PortRange:
        if self.from_port > self.to_port:
            raise ValueError(f"port range {self.from_port}-{self.to_port} runs backwards")
        return self

    def to_aws(self) -> TrafficMirrorPortRangeRequestTypeDef:
        return {"FromPort": self.from_port, "ToPort": self.to_port}


Port = Annotated[PortRange, BeforeValidator(_parse_port_range)]


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR block ({exc})") from None


Cidr = Annotated[str, AfterValidator(_network)]

PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}


class FilterRule(StepModel):
    """One traffic mirror filter rule, as CreateTrafficMirrorFilterRule takes it."""

    direction: Literal["ingress", "egress"]
    rule_number: int
    protocol: int | None
    source_cidr: str
    destination_cidr: str
    source_ports: PortRange | None = None
    destination_ports: PortRange | None = None

    def to_aws(
        self, filter_id: str, description: str, client_token: str
    ) -> CreateTrafficMirrorFilterRuleRequestTypeDef:
        """The CreateTrafficMirrorFilterRule request that adds this rule to `filter_id`."""
        params: CreateTrafficMirrorFilterRuleRequestTypeDef = {
            "TrafficMirrorFilterId": filter_id,
            "Description": description,
            "ClientToken": client_token,
            "TrafficDirection": self.direction,
            "RuleNumber": self.rule_number,
            "RuleAction": "accept",
            "SourceCidrBlock": self.source_cidr,
            "DestinationCidrBlock": self.destination_cidr,
        }
        if self.protocol is not None:
            params["Protocol"] = self.protocol
        if self.source_ports:
            params["SourcePortRange"] = self.source_ports.to_aws()
        if self.destination_ports:
            params["DestinationPortRange"] = self.destination_ports.to_aws()
        return params


class CaptureFilter(StrictModel):
    """What to mirror. The default mirrors everything in both directions.

    `ports` are ports on the captured instance (its services); `remote_ports` are ports on the peer
    (the services it calls); `cidrs` are the peers' addresses. Each direction gets one rule per
    combination, and AWS allows 10 rules per filter.
    """

    directions: list[Literal["ingress", "egress"]] = Field(default=["ingress", "egress"], min_length=1)
    protocol: Literal["all", "tcp", "udp", "icmp", "icmpv6"] = "all"
    ports: list[Port] = Field(default_factory=list, max_length=10)
    remote_ports: list[Port] = Field(default_factory=list, max_length=10)
    cidrs: list[Cidr] = Field(default_factory=list, max_length=10)
    include_amazon_dns: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> CaptureFilter:
        if len(set(self.directions)) != len(self.directions):
            raise ValueError("directions lists a direction twice")
        if (self.ports or self.remote_ports) and self.protocol not in ("tcp", "udp"):
            raise ValueError(f"ports need protocol tcp or udp (protocol is {self.protocol!r})")
        if self.protocol == "icmpv6" and any(":" not in c for c in self.cidrs):
            raise ValueError("icmpv6 needs IPv6 cidrs")
        count = len(self.rules())
        if count > MAX_FILTER_RULES:
            raise ValueError(
                f"this filter needs {count} rules ({len(self.directions)} direction(s) x "
                f"{max(len(self.cidrs), 1)} cidr(s) x {max(len(self.ports), 1)} port(s) x "
                f"{max(len(self.remote_ports), 1)} remote port(s)); AWS allows {MAX_FILTER_RULES} per filter"
            )
        return self

    def rules(self) -> list[FilterRule]:
        protocol = PROTOCOL_NUMBERS.get(self.protocol)
        remotes = self.cidrs or ["0.0.0.0/0"]
        rules: list[FilterRule] = []
        local_ports: list[PortRange | None] = [*self.ports] or [None]
        remote_ports: list[PortRange | None] = [*self.remote_ports] or [None]
        for direction in self.directions:
            for number, (remote, local_port, remote_port) in enumerate(
                ((cidr, lp, rp) for cidr in remotes for lp in local_ports for rp in remote_ports),
                start=1,
            ):
                anywhere = "::/0" if ":" in remote else "0.0.0.0/0"
                inbound = direction == "ingress"
                rules.append(
                    FilterRule(
                        direction=direction,
                        rule_number=number * 10,
                        protocol=protocol,
                        source_cidr=remote if inbound else anywhere,
                        destination_cidr=anywhere if inbound else remote,
                        source_ports=remote_port if inbound else local_port,
                        destination_ports=local_port if inbound else remote_port,
                    )
                )
        return rules


# --- Trigger inputs -------------------------------------------------------------------------------------


class CaptureOrigin(StrictModel):
    """Why a capture runs; set by mirrorcap itself on the captures a schedule or an alarm fans out."""

    trigger: Literal["alarm", "manual", "schedule"]
    name: TagText | None = None


class ManualRequest(StrictModel):
    """The document a person pastes into StartExecution (see README)."""

    instance_id: InstanceId
    duration_seconds: int | None = Field(default=None, ge=10)
    filter: CaptureFilter = Field(default_factory=CaptureFilter)
    packet_length: int | None = Field(default=None, ge=1, le=MAX_PACKET_LENGTH)
    network_interface_id: NetworkInterfaceId | None = None
    capture_id: CaptureId | None = None
    origin: CaptureOrigin = Field(default_factory=lambda: CaptureOrigin(trigger="manual"))


class SampleSelector(StrictModel):
    name: TagText = "sample"
    tag_key: TagText
    tag_values: list[TagText] = Field(min_length=1, max_length=20)
    max_instances: int = Field(default=5, ge=1, le=20)


class ScheduledSampleRequest(StrictModel):
    """The input of the sampling schedule (template parameter SampleScheduleInput)."""

    sample: SampleSelector
    duration_seconds: int | None = Field(default=None, ge=10)
    filter: CaptureFilter = Field(default_factory=CaptureFilter)
    packet_length: int | None = Field(default=None, ge=1, le=MAX_PACKET_LENGTH)


class AlarmState(BaseModel):
    value: str
    timestamp: datetime | None = None
    reason: str | None = None


class AlarmDetail(BaseModel):
    alarm_name: str = Field(alias="alarmName", min_length=1, max_length=255)
    state: AlarmState
    configuration: dict[str, Any] = Field(default_factory=dict)
    alarm_tags: dict[str, str] = Field(default_factory=dict, alias="alarmTags")


class AlarmStateChangeEvent(BaseModel):
    """EventBridge `CloudWatch Alarm State Change` (only the fields mirrorcap reads)."""

    source: Literal["aws.cloudwatch"]
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    time: datetime
    region: str | None = None
    detail: AlarmDetail


class ExecutionContext(StrictModel):
    """`$$.Execution` fields the state machine passes to ResolveRequest."""

    id: str
    name: str | None = None
    start_time: datetime


# --- The resolved request and each step's output -------------------------------------------------------


class CaptureRequest(StepModel):
    """A validated capture of one instance: everything later steps need, decided before anything exists."""

    capture_id: CaptureId
    origin: CaptureOrigin
    execution_id: str
    instance_id: InstanceId
    instance_type: str
    network_interface_id: NetworkInterfaceId
    source_ip: str
    subnet_id: str
    vpc_id: str
    availability_zone: str
    duration_seconds: int
    packet_length: int | None = None
    filter: CaptureFilter
    vni: int
    requested_at: datetime


class CollectorInstance(StepModel):
    instance_id: str
    security_group_id: str
    network_interface_id: str
    private_ip: str
    instance_type: str
    image_id: str
    launched_at: datetime


class MirrorSession(StepModel):
    target_id: str
    filter_id: str
    session_id: str
    session_number: int
    vni: int
    rule_count: int


class CaptureCommand(StepModel):
    command_id: str
    started_at: datetime
    window_ends_at: datetime
    finishes_by: datetime  # the script's own bound: window, start-up and delivering the last files
    grant_expires_at: datetime  # when S3 stops accepting the collector's uploads, unless renewed
    wait_seconds: int = Field(ge=0)  # for WaitCaptureWindow: until the window ends or the grant needs renewing
    renew_grant: bool  # after that wait: renew the upload grant (and wait again) before collecting


class CapturedObject(StepModel):
    key: str
    bytes: int
    sha256: str | None = None
    packets: int | None = None


class CaptureArtifacts(StepModel):
    bucket: str
    prefix: str
    manifest_key: str
    status: str
    objects: list[CapturedObject]
    packets_captured: int
    packets_dropped_by_kernel: int
    console_url: str


class TeardownProgress(StepModel):
    # Every field required: the state machine's Choice reads `complete`, and a Choice on an absent field
    # fails the execution on AWS (States.Runtime) with no Catch. PrepareTeardown's Pass state starts it.
    attempt: int = Field(ge=0)
    complete: bool
    deleted: list[str]
    pending: list[str]


# --- Each step's input and output, in workflow order ------------------------------------------------------
# `<Step>Input` is what the state's Parameters hand the function; `<Step>Output` is what it returns (at
# the state's ResultPath). The handlers dump outputs with exclude_none: a Choice may read only required,
# non-nullable fields (tests/unit/test_statemachine_structure.py checks it).


class ResolveRequestInput(BaseModel):
    event: dict[str, Any]
    execution: ExecutionContext


class ResolveRequestOutput(StepModel):
    """One capture to run now, or several to start as executions of their own (ResultPath `$`)."""

    capture: CaptureRequest | None = None
    fanout: list[ManualRequest] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ResolveRequestOutput:
        # The state machine's OneCaptureOrMany branches on which one is present.
        if (self.capture is None) == (self.fanout is None):
            raise ValueError("exactly one of capture and fanout")
        return self


class FanOutInput(StepModel):
    fanout: list[ManualRequest]


class StartedCapture(StepModel):
    capture_id: str
    instance_id: str
    execution_arn: str


class FanOutOutput(StepModel):
    started: list[StartedCapture]


class CaptureStep(StepModel):
    """Input of every step that works on one capture."""

    capture: CaptureRequest


class CollectorStep(CaptureStep):
    """Input of the steps that work on a launched collector."""

    collector: CollectorInstance


class LockSourceInput(CaptureStep):
    pass


class LockSourceOutput(StepModel):
    source: str
    capture_id: str
    expires_at: int  # epoch seconds


class LaunchCollectorInput(CaptureStep):
    pass


class LaunchCollectorOutput(CollectorInstance):
    """At `$.collector`."""


class CheckCollectorReadyInput(CollectorStep):
    pass


class CheckCollectorReadyOutput(StepModel):
    ready: bool
    instance_state: str
    ping_status: str | None = None
    checked_at: datetime
    deadline: datetime


class CreateMirrorSessionInput(CollectorStep):
    pass


class CreateMirrorSessionOutput(MirrorSession):
    """At `$.mirror`."""


class StartCaptureInput(CollectorStep):
    mirror: MirrorSession


class StartCaptureOutput(CaptureCommand):
    """At `$.command`."""


class RenewUploadGrantInput(CollectorStep):
    mirror: MirrorSession
    command: CaptureCommand


class RenewUploadGrantOutput(CaptureCommand):
    """The same command, with the new grant's expiry and the next wait planned (at `$.command`)."""


class CollectCaptureInput(CollectorStep):
    command: CaptureCommand


class CollectCaptureOutput(CaptureArtifacts):
    """At `$.artifacts`."""


class TeardownCaptureInput(CaptureStep):
    teardown: TeardownProgress


class TeardownCaptureOutput(TeardownProgress):
    """At `$.teardown`."""


class ReportCaptureInput(CaptureStep):
    artifacts: CaptureArtifacts


class ReportCaptureOutput(StepModel):
    summary_key: str
    report_key: str
    decapsulated_key: str
    subject: str
    notification_id: str | None = None


class SweepOrphansInput(StepModel):
    dry_run: bool = False


class SweepOrphansOutput(StepModel):
    swept: list[str]
    kept: list[str]
    deleted: list[str]
    pending: list[str]
    locks_released: list[str]
    dry_run: bool
