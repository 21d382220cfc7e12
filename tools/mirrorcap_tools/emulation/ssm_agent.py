"""The SSM agent on emulated instances, which moto 5.2.5 does not have.

- DescribeInstanceInformation (missing in moto): an instance with an instance profile is `Online` once
  it has been running for `registration_seconds` (AWS: a minute or more).
- SendCommand: moto accepts any instance and sends to every instance in the region; here it answers
  `InvalidInstanceId` until the target's agent is online, targets exactly the instances named, and
  refuses with `MaxDocumentSizeExceeded` when the document and its parameters exceed 64 KB (the quota
  on a document's content "includes the content specified for input parameters at runtime").
- Command status: `InProgress` until the command's executor says it is done (moto: always Success);
  then the executor's outcome, and its side effects (the capture's uploads) happen at that moment.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ssm.responses import SimpleSystemManagerResponse

from mirrorcap_tools.emulation.clock import VirtualClock
from mirrorcap_tools.emulation.ec2_lifecycle import InstanceLifecycle
from mirrorcap_tools.emulation.errors import AwsError

MAX_DOCUMENT_BYTES = 64 * 1024
RUN_SHELL_SCRIPT_BYTES = 1536  # AWS-RunShellScript's own content, about 1.5 KB (moto 5.2.5 does not have it)


@dataclass
class CommandOutcome:
    status: str  # Success | Failed | TimedOut | Cancelled
    response_code: int = 0
    stdout: str = ""
    stderr: str = ""


@dataclass
class SentCommand:
    command_id: str
    instance: Any  # moto's Instance
    account_id: str
    region: str
    comment: str
    parameters: dict[str, list[str]]
    output_bucket: str
    output_prefix: str


class CommandExecutor(Protocol):
    """What runs on the emulated instance: how long it takes, and what it does when it ends."""

    def plan(self, command: SentCommand) -> tuple[float, Callable[[], CommandOutcome]]: ...


@dataclass
class _Run:
    command: SentCommand
    started: float
    finishes: float
    finish: Callable[[], CommandOutcome]
    outcome: CommandOutcome | None = None


def _overall(statuses: list[str]) -> str:
    """A command's status from its invocations': still running while any runs, else the worst outcome."""
    for status in ("InProgress", "Failed", "TimedOut", "Cancelled"):
        if status in statuses:
            return status
    return "Success"


class SsmAgents:
    def __init__(
        self,
        clock: VirtualClock,
        lifecycle: InstanceLifecycle,
        executor: CommandExecutor,
        registration_seconds: float | None = 75,
    ) -> None:
        self.clock = clock
        self.lifecycle = lifecycle
        self.executor = executor
        self.registration_seconds = registration_seconds  # None: the agent never comes online
        self._lock = threading.RLock()
        self._runs: dict[tuple[str, str], _Run] = {}  # (command id, instance id)

    def ping_status(self, instance: Any) -> str | None:
        if self.registration_seconds is None or not instance.iam_instance_profile:
            return None
        if self.lifecycle.state_of(instance) != "running":
            return "ConnectionLost" if instance.id in self.lifecycle.running_since else None
        since = self.lifecycle.running_since.get(instance.id, 0.0)
        return "Online" if self.clock.elapsed() - since >= self.registration_seconds else None

    def patches(self) -> list[tuple[type, str, Callable[..., Any]]]:
        agents = self
        send_command = SimpleSystemManagerResponse.send_command
        get_invocation = SimpleSystemManagerResponse.get_command_invocation
        list_commands = SimpleSystemManagerResponse.list_commands

        def describe_instance_information(response: SimpleSystemManagerResponse) -> ActionResult:
            return ActionResult({"InstanceInformationList": agents._information(response)})

        def send(response: SimpleSystemManagerResponse) -> ActionResult:
            return agents._send(response, send_command)

        def invocation(response: SimpleSystemManagerResponse) -> ActionResult:
            command_id = response._get_param("CommandId")
            if not agents._ours(command_id):
                return get_invocation(response)
            return ActionResult(agents._invocation(command_id, response._get_param("InstanceId")))

        def listed(response: SimpleSystemManagerResponse) -> ActionResult:
            result = list_commands(response)
            # moto types an action's result as object; ListCommands' is the response dict.
            for command in cast(dict[str, Any], result.result)["Commands"]:
                runs = [run for (cid, _), run in agents._runs.items() if cid == command["CommandId"]]
                if runs:
                    command["Status"] = _overall([agents._status(run).status for run in runs])
            return result

        return [
            (SimpleSystemManagerResponse, "describe_instance_information", describe_instance_information),
            (SimpleSystemManagerResponse, "send_command", send),
            (SimpleSystemManagerResponse, "get_command_invocation", invocation),
            (SimpleSystemManagerResponse, "list_commands", listed),
        ]

    def _instances(self, account_id: str, region: str) -> dict[str, Any]:
        backend = ec2_backends[account_id][region]
        return {i.id: i for r in backend.all_reservations() for i in r.instances}

    def _information(self, response: SimpleSystemManagerResponse) -> list[dict[str, Any]]:
        filters = {item["Key"]: set(item.get("Values", [])) for item in response._get_param("Filters", []) or []}
        unsupported = set(filters) - {"InstanceIds", "PingStatus", "PlatformTypes", "ResourceType"}
        if unsupported or response._get_param("InstanceInformationFilterList"):
            # Refuse loudly rather than return what AWS would filter out.
            raise AwsError(
                "InvalidFilterKey",
                f"the offline emulation does not filter on {sorted(unsupported) or 'InstanceInformationFilterList'}",
            )
        result = []
        for instance_id, instance in self._instances(response.current_account, response.region).items():
            status = self.ping_status(instance)
            if status is None:
                continue
            facts = {
                "InstanceIds": instance_id,
                "PingStatus": status,
                "PlatformTypes": "Linux",
                "ResourceType": "EC2Instance",
            }
            if any(facts[key] not in values for key, values in filters.items()):
                continue
            result.append({
                "InstanceId": instance_id,
                "PingStatus": status,
                "LastPingDateTime": self.clock.now(),
                "AgentVersion": "3.3.0.0",
                "IsLatestVersion": True,
                "PlatformType": "Linux",
                "PlatformName": "Amazon Linux",
                "PlatformVersion": "2023",
                "ResourceType": "EC2Instance",
                "IPAddress": instance.private_ip,
                "ComputerName": f"ip-{instance.private_ip.replace('.', '-')}.ec2.internal",
            })  # fmt: skip
        return result

    def _send(self, response: SimpleSystemManagerResponse, original: Callable[..., Any]) -> ActionResult:
        size = RUN_SHELL_SCRIPT_BYTES + len(json.dumps(response._get_param("Parameters", {})).encode())
        if size > MAX_DOCUMENT_BYTES:
            raise AwsError("MaxDocumentSizeExceeded", "The size limit of a document is 64 KB.")
        requested = response._get_param("InstanceIds", []) or []
        instances = self._instances(response.current_account, response.region)
        not_ready = [i for i in requested if i not in instances or self.ping_status(instances[i]) != "Online"]
        if not requested or not_ready:
            raise AwsError(
                "InvalidInstanceId",
                f"Instances [{not_ready or requested}] not in a valid state for account {response.current_account}",
            )
        sent_id = original(response).result["Command"]["CommandId"]
        command = response.ssm_backend.get_command_by_id(sent_id)
        # moto adds every instance of the region to a command without Targets; AWS sends to those named.
        command.instance_ids = list(requested)
        command.invocations = [command.invocation_response(i, "aws:runShellScript") for i in requested]
        command.target_count = command.completed_count = len(requested)
        command.status = "Pending"
        with self._lock:
            for instance_id in requested:
                sent = SentCommand(
                    command_id=command.command_id,
                    instance=instances[instance_id],
                    account_id=response.current_account,
                    region=response.region,
                    comment=command.comment,
                    parameters=command.parameters,
                    output_bucket=command.output_s3_bucket_name,
                    output_prefix=command.output_s3_key_prefix,
                )
                duration, finish = self.executor.plan(sent)
                started = self.clock.elapsed()
                self._runs[command.command_id, instance_id] = _Run(sent, started, started + duration, finish)
        return ActionResult({"Command": command.response_object()})

    def _status(self, run: _Run) -> CommandOutcome:
        with self._lock:
            if run.outcome is None:
                if self.clock.elapsed() < run.finishes:
                    return CommandOutcome(status="InProgress", response_code=-1)
                run.outcome = run.finish()
            return run.outcome

    def _ours(self, command_id: str) -> bool:
        return any(cid == command_id for cid, _ in self._runs)

    def _invocation(self, command_id: str, instance_id: str) -> dict[str, Any]:
        run = self._runs.get((command_id, instance_id))
        if run is None:
            raise AwsError("InvocationDoesNotExist", "An error occurred (InvocationDoesNotExist)")
        outcome = self._status(run)
        return {
            "CommandId": command_id,
            "InstanceId": instance_id,
            "Comment": run.command.comment,
            "DocumentName": "AWS-RunShellScript",
            "PluginName": "aws:runShellScript",
            "ResponseCode": outcome.response_code,
            "Status": outcome.status,
            "StatusDetails": outcome.status,
            # AWS returns the first 24,000 (stdout) and 8,000 (stderr) characters; the rest is in S3 output.
            "StandardOutputContent": outcome.stdout[:24000],
            "StandardErrorContent": outcome.stderr[:8000],
        }
