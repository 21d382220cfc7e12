"""One e2e run, start to finish: deploy, launch a source, capture it, check, and always clean up.

Each thing the run makes registers its own deletion the moment it exists (the stack's before it is
deployed: a deploy that fails halfway leaves a stack to delete). The deletions then run in reverse
order whatever happened, each on its own: one that fails is logged and the others still run.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

import boto3
from mirrorcap.naming import capture_prefix

from mirrorcap_tools.e2e.checks import (
    Check,
    ExecutionEvidence,
    capture_checks,
    collector_volumes,
    read_execution,
    risk_checks,
)
from mirrorcap_tools.e2e.cost import CostEstimate, InstanceUse, estimate_cost
from mirrorcap_tools.e2e.pacing import Pacing
from mirrorcap_tools.e2e.source import (
    SourceInstance,
    create_security_group,
    delete_security_group,
    launch_source,
    terminate_source,
    wait_running,
)
from mirrorcap_tools.e2e.stack import DeployedStack, StackProvider, aws_client, delete_capture_objects

Log = Callable[[str], None]


def new_stack_name() -> str:
    return f"mirrorcap-e2e-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class E2eOptions:
    subnet_id: str
    stack_name: str
    keep_stack: bool = False
    delete_captures: bool = False
    # A type Traffic Mirroring supports as a source (T3 and T4G are; T2 is not), and the cheapest.
    source_instance_type: str = "t3.micro"
    capture_seconds: int = 60


@dataclass(frozen=True)
class CleanupResult:
    step: str
    ok: bool
    detail: str


@dataclass
class E2eReport:
    stack_name: str
    checks: list[Check] = field(default_factory=list)
    cleanup: list[CleanupResult] = field(default_factory=list)
    error: str | None = None
    capture_id: str | None = None
    execution_arn: str | None = None
    cost: CostEstimate | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (
            self.error is None
            and bool(self.checks)
            and all(c.passed for c in self.checks)
            and all(c.ok for c in self.cleanup)
        )

    def text(self) -> str:
        lines = [f"make e2e, stack {self.stack_name}: {'PASSED' if self.passed else 'FAILED'}"]
        if self.error:
            lines.append(f"stopped by: {self.error}")
        lines += ["", "checks:", *(f"  {c.line()}" for c in self.checks)] if self.checks else []
        lines += ["", "cleanup:", *(f"  {'done' if c.ok else 'FAILED'}  {c.step}: {c.detail}" for c in self.cleanup)]
        lines += ["", *self.notes] if self.notes else []
        if self.cost:
            lines += ["", "cost (estimate):", *(f"  {line}" for line in self.cost.text().splitlines())]
        return "\n".join(lines)


class Cleanup:
    """Deletions in reverse order of creation; each runs whatever the others did."""

    def __init__(self, log: Log) -> None:
        self._steps: list[tuple[str, Callable[[], str]]] = []
        self._log = log

    def add(self, step: str, action: Callable[[], str]) -> None:
        self._steps.append((step, action))

    def run(self) -> list[CleanupResult]:
        results = []
        while self._steps:
            step, action = self._steps.pop()
            try:
                result = CleanupResult(step, True, action())
            except Exception as exc:  # each step on its own: a failed one must not stop the next
                result = CleanupResult(step, False, f"{type(exc).__name__}: {exc}")
            self._log(f"cleanup: {'done' if result.ok else 'FAILED'}  {step}: {result.detail}")
            results.append(result)
        return results


@dataclass
class _Run:
    """What the run learns as it goes: the cleanup and the cost need whatever part of it exists."""

    stack: DeployedStack | None = None
    source: SourceInstance | None = None
    source_launched_at: float | None = None
    source_gone_at: float | None = None
    evidence: ExecutionEvidence | None = None


def run_e2e(
    session: boto3.session.Session,
    options: E2eOptions,
    stacks: StackProvider,
    pacing: Pacing,
    log: Log = print,
) -> E2eReport:
    report = E2eReport(stack_name=options.stack_name)
    cleanup = Cleanup(log)
    run = _Run()
    try:
        stacks.claim(session, options.stack_name)  # before its deletion is registered: never delete others' stacks
        if not options.keep_stack:
            cleanup.add("delete the stack", lambda: _delete_stack(session, options, stacks, run))
        log(f"deploying stack {options.stack_name} into {session.region_name}")
        stack = run.stack = stacks.deploy(session, options.stack_name)
        log(f"stack ready: state machine {stack.state_machine_arn}, bucket {stack.bucket}")

        group_id = create_security_group(session, options.subnet_id, options.stack_name)
        cleanup.add("delete the source's security group", lambda: delete_security_group(session, group_id))
        run.source_launched_at = pacing.clock()
        source = run.source = launch_source(
            session, options.subnet_id, group_id, options.source_instance_type, options.stack_name
        )
        cleanup.add("terminate the source instance", lambda: _terminate_source(session, source, pacing, run))
        log(f"source instance {source.instance_id} ({source.instance_type}) launched in {options.subnet_id}")
        wait_running(session, source.instance_id, pacing)
        log(f"source instance {source.instance_id} running")

        execution_arn = report.execution_arn = _start_capture(session, stack, source, options)
        cleanup.add(
            "stop the capture if it still runs, and sweep what it left",
            lambda: _stop_and_sweep(session, stack, execution_arn, pacing, log),
        )
        if options.keep_stack and options.delete_captures:
            cleanup.add("delete this capture's objects", lambda: _delete_this_capture(session, stack, run))
        log(f"capture started: {execution_arn}")
        evidence, volumes = _watch(session, execution_arn, pacing, run, log)
        report.capture_id = evidence.capture_id
        log(f"capture {evidence.capture_id} ended {evidence.status}")
        report.checks = capture_checks(session, stack, evidence, source.network_interface_id)
        report.checks += risk_checks(session, evidence, volumes)
        if evidence.capture_id and not options.delete_captures:
            report.notes.append(f"captures kept in s3://{stack.bucket}/{capture_prefix(evidence.capture_id)}")
        for check in report.checks:
            log(check.line())
    except Exception as exc:  # reported, then everything made so far is deleted
        report.error = f"{type(exc).__name__}: {exc}"
        log(f"run stopped: {report.error}")
    finally:
        report.cleanup = cleanup.run()
        report.cost = _cost(run, options)
    return report


def _start_capture(
    session: boto3.session.Session, stack: DeployedStack, source: SourceInstance, options: E2eOptions
) -> str:
    # The README's manual document, as a person would paste it.
    document = {"instance_id": source.instance_id, "duration_seconds": options.capture_seconds}
    return aws_client(session, "stepfunctions").start_execution(
        stateMachineArn=stack.state_machine_arn,
        name=f"{options.stack_name[:71]}-{secrets.token_hex(4)}",  # execution names: at most 80 characters
        input=json.dumps(document),
    )["executionArn"]


def _watch(
    session: boto3.session.Session, execution_arn: str, pacing: Pacing, run: _Run, log: Log
) -> tuple[ExecutionEvidence, list[tuple[str, bool]] | None]:
    """Follow the execution to its end; look at the collector's volumes while the collector exists
    (DeleteOnTermination takes them with it, and no step's output records encryption)."""
    volumes: list[tuple[str, bool]] | None = None

    def ended() -> ExecutionEvidence | None:
        nonlocal volumes
        evidence = run.evidence = read_execution(session, execution_arn)
        collector = evidence.collector
        if collector and not volumes:
            volumes = collector_volumes(session, collector["instance_id"]) or None
            if volumes:
                log(f"collector {collector['instance_id']} volumes: {volumes}")
        return evidence if evidence.status != "RUNNING" else None

    evidence = pacing.wait_for(f"execution {execution_arn} to end", ended, pacing.execution_timeout_seconds)
    return evidence, volumes


def _stop_and_sweep(
    session: boto3.session.Session, stack: DeployedStack, execution_arn: str, pacing: Pacing, log: Log
) -> str:
    """A run that ended by itself has torn down already. One this run gave up on is stopped, and a
    stopped execution runs no Catch: the stack's own backstop, the sweeper, deletes what it left."""
    sfn = aws_client(session, "stepfunctions")
    if sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING":
        return "the capture had ended by itself"
    sfn.stop_execution(executionArn=execution_arn, error="E2eCleanup", cause="make e2e stopped it to clean up")
    log(f"stopped {execution_arn}; sweeping what it left")
    lambda_client = aws_client(session, "lambda")
    for sweep in range(1, pacing.sweep_rounds + 1):
        response = lambda_client.invoke(FunctionName=stack.sweeper_function, Payload=b"{}")
        result = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            raise RuntimeError(f"the sweeper failed: {result}")
        log(f"sweep {sweep}: {result}")
        # A sweep deletes what can go now; a security group waits for its collector's termination.
        if not result.get("swept") and not result.get("pending"):
            return f"stopped the capture; {sweep} sweep(s) left nothing"
        pacing.sleep(pacing.poll_seconds)
    raise RuntimeError(f"still sweeping after {pacing.sweep_rounds} rounds: run the sweeper again (docs/e2e.md)")


def _terminate_source(session: boto3.session.Session, source: SourceInstance, pacing: Pacing, run: _Run) -> str:
    done = terminate_source(session, source.instance_id, pacing)
    run.source_gone_at = pacing.clock()
    return done


def _delete_stack(session: boto3.session.Session, options: E2eOptions, stacks: StackProvider, run: _Run) -> str:
    emptied = ""
    if options.delete_captures and run.stack:
        count = delete_capture_objects(session, run.stack.bucket, prefix="")
        emptied = f"{count} capture object version(s) deleted; "
    done = stacks.delete(session, options.stack_name, keep_bucket=not options.delete_captures)
    return emptied + done


def _cost(run: _Run, options: E2eOptions) -> CostEstimate:
    uses = []
    if run.source and run.source_launched_at is not None:
        end = run.source_gone_at if run.source_gone_at is not None else run.source_launched_at
        uses.append(InstanceUse("source", run.source.instance_type, end - run.source_launched_at))
    evidence = run.evidence
    if evidence and evidence.collector and evidence.started and evidence.stopped:
        # At most the execution's length: the collector starts after it and is terminated before it ends.
        seconds = (evidence.stopped - evidence.started).total_seconds()
        uses.append(InstanceUse("collector (at most)", evidence.collector["instance_type"], seconds))
    return estimate_cost(uses, evidence.states_entered if evidence else 0)


def _delete_this_capture(session: boto3.session.Session, stack: DeployedStack, run: _Run) -> str:
    capture_id = run.evidence.capture_id if run.evidence else None
    if not capture_id:
        return "no capture id: nothing was delivered"
    count = delete_capture_objects(session, stack.bucket, prefix=capture_prefix(capture_id))
    return f"{count} object version(s) under s3://{stack.bucket}/{capture_prefix(capture_id)} deleted"
