"""The stack an e2e run deploys and deletes.

`SamStacks` is the real one: `sam build` and `sam deploy` (subprocesses), outputs and physical ids read
back from CloudFormation, `DeleteStack` at the end. Tests replace it with a provider whose stack is the
emulated account's (see tests/e2e), which is why the flow only ever sees a `DeployedStack`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError, WaiterError

from mirrorcap_tools.template import PROJECT_ROOT

# Tag key on everything an e2e run makes: on the stack (CloudFormation propagates stack tags to the
# resources it creates) and on the source instance and its security group. Its value is the stack name,
# so resources a dead run left can be found by hand (docs/e2e.md). Deliberately not a `mirrorcap:` key:
# the template's IAM conditions and the sweeper give those keys meaning.
E2E_TAG = "mirrorcap-e2e"

# Logical ids in template.yaml the run needs besides the outputs.
LOCK_TABLE_ID = "SourceLockTable"
SWEEPER_ID = "SweepOrphansFunction"
BUCKET_ID = "CaptureBucket"


class RefusedToRun(RuntimeError):
    """A precondition failed before anything was created: the message says what to fix."""


@dataclass(frozen=True)
class DeployedStack:
    name: str
    state_machine_arn: str
    bucket: str
    lock_table: str
    sweeper_function: str
    function_names: tuple[str, ...] = ()


class StackProvider(Protocol):
    def claim(self, session: boto3.session.Session, stack_name: str) -> None:
        """RefusedToRun if the name belongs to a stack this tool did not make (it deletes its stack)."""
        ...

    def deploy(self, session: boto3.session.Session, stack_name: str) -> DeployedStack: ...

    def delete(self, session: boto3.session.Session, stack_name: str, *, keep_bucket: bool) -> str:
        """Delete the stack (nothing to do when it does not exist); return what was done, in words."""
        ...


def aws_client(session: boto3.session.Session, service: str) -> Any:
    """A client of the run's session, untyped on purpose: the run reads AWS's answers as plain dicts, and
    boto3-stubs' literal-typed requests would make every tag list and filter restate its TypedDict."""
    return session.client(service)  # type: ignore[call-overload]


def _run_logged(command: list[str], cwd: Path, log: Callable[[str], None]) -> None:
    log("$ " + " ".join(command))
    subprocess.run(command, cwd=cwd, check=True)


@dataclass
class SamStacks:
    """The real deploy: SAM CLI from `sam` (make e2e passes the pinned one in .venv-sam)."""

    sam: str = "sam"
    region: str | None = None
    profile: str | None = None
    project_root: Path = PROJECT_ROOT
    log: Callable[[str], None] = print
    run: Callable[[list[str], Path, Callable[[str], None]], None] = field(default=_run_logged, repr=False)

    def _account_flags(self) -> list[str]:
        flags = ["--region", self.region] if self.region else []
        return flags + (["--profile", self.profile] if self.profile else [])

    def claim(self, session: boto3.session.Session, stack_name: str) -> None:
        refuse_foreign_stack(session, stack_name)

    def deploy(self, session: boto3.session.Session, stack_name: str) -> DeployedStack:
        self.run([self.sam, "build", "--template-file", "template.yaml"], self.project_root, self.log)
        self.run(
            [
                self.sam, "deploy",
                "--stack-name", stack_name,
                "--resolve-s3",
                "--capabilities", "CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND",
                "--no-confirm-changeset",
                "--no-fail-on-empty-changeset",  # a kept stack (--keep-stack) redeployed unchanged
                "--tags", f"{E2E_TAG}={stack_name}",
                *self._account_flags(),
            ],
            self.project_root,
            self.log,
        )  # fmt: skip
        return read_stack(session, stack_name)

    def delete(self, session: boto3.session.Session, stack_name: str, *, keep_bucket: bool) -> str:
        cloudformation = aws_client(session, "cloudformation")
        try:
            resources = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                return f"stack {stack_name} does not exist: nothing to delete"
            raise
        functions = [r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::Lambda::Function"]
        done = _delete_and_wait(cloudformation, stack_name, retain=[])
        if done == "DELETE_FAILED" and keep_bucket:
            # The capture bucket still holds captures (kept on purpose), and CloudFormation cannot delete a
            # bucket that is not empty: delete the rest and keep the bucket. RetainResources is only
            # accepted for a stack in DELETE_FAILED.
            done = _delete_and_wait(cloudformation, stack_name, retain=[BUCKET_ID])
        if done != "DELETE_COMPLETE":
            raise RuntimeError(f"stack {stack_name} ended {done}: see its events in the CloudFormation console")
        # Lambda creates each function's log group on its first invocation, outside the stack.
        logs = aws_client(session, "logs")
        for name in functions:
            try:
                logs.delete_log_group(logGroupName=f"/aws/lambda/{name}")
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
        kept = " (capture bucket kept)" if keep_bucket else ""
        return f"stack {stack_name} deleted{kept}, and the log groups of its {len(functions)} functions"


def _delete_and_wait(cloudformation: Any, stack_name: str, retain: list[str]) -> str:
    cloudformation.delete_stack(StackName=stack_name, **({"RetainResources": retain} if retain else {}))
    try:
        cloudformation.get_waiter("stack_delete_complete").wait(
            StackName=stack_name, WaiterConfig={"Delay": 15, "MaxAttempts": 80}
        )
    except WaiterError as exc:
        last: Any = exc.last_response or {}  # the DescribeStacks answer that ended the wait
        return str((last.get("Stacks") or [{}])[0].get("StackStatus", exc))
    return "DELETE_COMPLETE"


def refuse_foreign_stack(session: boto3.session.Session, stack_name: str) -> None:
    """Never deploy over (and later delete) a stack that an e2e run did not make."""
    try:
        stacks = aws_client(session, "cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return
        raise
    tags = {tag["Key"]: tag["Value"] for tag in stacks[0].get("Tags", [])}
    if tags.get(E2E_TAG) != stack_name:
        raise RefusedToRun(
            f"stack {stack_name} exists and was not made by make e2e (no tag {E2E_TAG}={stack_name}); "
            "the run deletes its stack at the end, so choose another --stack-name"
        )


def read_stack(session: boto3.session.Session, stack_name: str) -> DeployedStack:
    cloudformation = aws_client(session, "cloudformation")
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    resources = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
    return DeployedStack(
        name=stack_name,
        state_machine_arn=outputs["StateMachineArn"],
        bucket=outputs["CaptureBucketName"],
        lock_table=physical[LOCK_TABLE_ID],
        sweeper_function=physical[SWEEPER_ID],
        function_names=tuple(
            r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::Lambda::Function"
        ),
    )


def delete_capture_objects(session: boto3.session.Session, bucket: str, prefix: str) -> int:
    """Delete every version and delete marker under `prefix` (the bucket is versioned: deleting the
    current objects alone would leave their versions, and the bucket could still not be deleted)."""
    s3 = aws_client(session, "s3")
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        batch = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for kind in ("Versions", "DeleteMarkers")
            for item in page.get(kind, [])
        ]
        if batch:  # a page holds at most 1,000 keys of each kind; DeleteObjects takes 1,000 at a time
            for start in range(0, len(batch), 1000):
                response = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch[start : start + 1000]})
                if response.get("Errors"):
                    raise RuntimeError(f"s3 refused to delete some objects: {response['Errors'][:3]}")
                deleted += len(batch[start : start + 1000])
    return deleted
