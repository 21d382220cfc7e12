"""`mirrorcap watch`: follow one capture live, from its execution history and its objects in S3."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from mirrorcap_tools.formatting import human_bytes
from mirrorcap_tools.operator.artifacts import Headline, StoredObject, headline, list_objects, read_json
from mirrorcap_tools.operator.aws import Connection
from mirrorcap_tools.operator.captures import CaptureView, read_view, require_execution
from mirrorcap_tools.operator.stack import Stack


class Outcome(IntEnum):
    """`watch`'s exit codes (docs/cli.md): how the capture ended."""

    SUCCEEDED = 0
    ERROR = 1  # the CLI could not do its job (credentials, stack, unknown capture, ...)
    ALREADY_CAPTURING = 3  # another capture of that source was running: this one created nothing
    FAILED = 4  # the workflow failed (and tore down): the error says why
    TIMED_OUT = 5
    ABORTED = 6  # stopped by hand (StopExecution): the sweeper removes what it left
    INTERRUPTED = 130  # Ctrl-C: the capture goes on


# The workflow's phases in order, and the states that belong to each (statemachine/capture.asl.json).
PHASES: tuple[tuple[str, frozenset[str]], ...] = (
    ("request", frozenset({"ResolveRequest", "OneCaptureOrMany", "FanOut", "LockSource"})),
    ("collector launch", frozenset({"LaunchCollector", "WaitForCollectorBoot"})),
    ("readiness wait", frozenset({"CheckCollectorReady", "IsCollectorReady", "WaitBeforeNextReadinessCheck"})),
    ("mirror session", frozenset({"CreateMirrorSession", "StartCapture"})),
    ("capture window", frozenset({"WaitCaptureWindow", "RenewGrantOrCollect", "RenewUploadGrant", "CollectCapture"})),
    ("teardown", frozenset({"PrepareTeardown", "TeardownCapture", "IsTeardownComplete", "WaitForTeardown"})),
    ("report", frozenset({"ReportCapture", "CaptureSucceeded"})),
)
# The other states (the Choices after teardown, the Fail and end states) belong to no phase: they show as the
# phase before them, and the final line says how it ended.


@dataclass
class Snapshot:
    view: CaptureView
    objects: list[StoredObject]
    now: datetime


def follow(
    connection: Connection,
    stack: Stack,
    capture_id: str,
    *,
    console: Console,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    described = require_execution(connection, stack, capture_id)
    snapshot = _snapshot(connection, stack, described, capture_id)
    try:
        with Live(render(snapshot), console=console, refresh_per_second=4, transient=False) as live:
            while not snapshot.view.finished:
                sleep(interval)
                described = connection.call(
                    "stepfunctions", "describe_execution", executionArn=snapshot.view.execution_arn
                )
                snapshot = _snapshot(connection, stack, described, capture_id)
                live.update(render(snapshot))
        if not console.is_terminal:
            console.line()  # off a terminal, Live prints its last frame without ending the line
    except KeyboardInterrupt:
        console.print(
            f"\nStopped watching; capture {capture_id} goes on. Follow it again: mirrorcap watch {capture_id}\n"
            f"To end it now: aws stepfunctions stop-execution --execution-arn {snapshot.view.execution_arn}\n"
            "(an abort: no last file is delivered, and the sweeper removes the collector and session within "
            "its schedule, 15 minutes by default)"
        )
        return Outcome.INTERRUPTED
    return conclude(connection, stack, snapshot.view, console)


def _snapshot(connection: Connection, stack: Stack, described: dict, capture_id: str) -> Snapshot:
    view = read_view(connection, described, capture_id)
    # Objects land only once the capture has started; before that, listing the prefix is a wasted call.
    objects = list_objects(connection, stack.bucket, view.prefix) if view.command else []
    return Snapshot(view, objects, connection.server_now())


def render(snapshot: Snapshot) -> RenderableType:
    view = snapshot.view
    capture = view.capture
    origin = (capture.get("origin") or {}).get("trigger", "?")
    title = Text.assemble(
        ("capture ", "bold"),
        (view.capture_id, "bold cyan"),
        f" of {capture.get('instance_id', '?')} ({origin}) · execution ",
        (view.status, _status_style(view.status)),
    )
    steps = Table.grid(padding=(0, 1))
    phases = [phase for phase in map(_phase_of, view.states) if phase is not None]
    current = phases[-1] if phases else 0
    reached = set(phases)
    for index, (phase, _) in enumerate(PHASES):
        if index == current and not view.finished:
            mark, style = "▶", "bold yellow"
        elif index in reached:
            mark, style = "✓", "green"
        else:
            mark, style = "·", "dim"
        steps.add_row(Text(mark, style=style), Text(phase, style=style), _phase_detail(snapshot, phase))
    return Group(title, steps)


def _phase_detail(snapshot: Snapshot, phase: str) -> RenderableType:
    view = snapshot.view
    if phase == "collector launch" and view.collector:
        return Text(f"{view.collector.get('instance_id')} {view.collector.get('instance_type')}")
    if phase == "readiness wait" and view.readiness:
        readiness = view.readiness
        agent = readiness.get("ping_status") or "not registered yet"
        return Text(
            f"check {view.readiness_checks}: instance {readiness.get('instance_state')}, SSM agent {agent}"
            + ("" if readiness.get("ready") else f", gives up at {_clock(readiness.get('deadline'))}")
        )
    if phase == "capture window" and view.command:
        return _window(snapshot)
    if phase == "teardown" and view.teardown:
        teardown = view.teardown
        pending = teardown.get("pending") or []
        return Text(
            f"deleted {len(teardown.get('deleted') or [])}"
            + (
                f", waiting for {', '.join(pending)}"
                if pending
                else ", nothing left"
                if teardown.get("complete")
                else ""
            )
        )
    if phase == "report" and view.report:
        if "report_key" in view.report:
            return Text(view.report.get("subject", "report ready"))
        return Text(f"report failed: {view.report.get('Error')}", style="red")
    return Text("")


def _window(snapshot: Snapshot) -> RenderableType:
    view = snapshot.view
    command = view.command or {}
    started = _parse(command.get("started_at"))
    ends = _parse(command.get("window_ends_at"))
    total = max((ends - started).total_seconds(), 1.0) if started and ends else 1.0
    closed = (
        view.artifacts is not None
        or view.finished
        or view.state not in {"WaitCaptureWindow", "RenewGrantOrCollect", "RenewUploadGrant"}
    )
    elapsed = total if closed else min(max((snapshot.now - started).total_seconds(), 0.0), total) if started else 0.0
    pcaps = [o for o in snapshot.objects if o.key.endswith(".pcap") and not o.name.startswith("decapsulated")]
    delivered = sum(o.bytes for o in pcaps)
    grid = Table.grid(padding=(0, 1))
    grid.add_row(
        ProgressBar(total=total, completed=elapsed, width=30),
        Text(f"{elapsed:.0f}/{total:.0f} s · {len(pcaps)} file(s), {human_bytes(delivered)} delivered"),
    )
    return grid


def conclude(connection: Connection, stack: Stack, view: CaptureView, console: Console) -> Outcome:
    """The last lines: the headline (or the error) and the exit code that says how it ended."""
    if view.status == "SUCCEEDED":
        output = view.output or {}
        if output.get("status") == "already capturing":
            console.print(
                f"[yellow]not captured:[/] another capture of {output.get('instance_id')} was running "
                f"({output.get('reason')})"
            )
            return Outcome.ALREADY_CAPTURING
        report = output.get("report") or {}
        if "summary_key" not in report:
            console.print(
                f"[green]captured[/]; the report failed ({report.get('Error')}): pcaps are in s3://{stack.bucket}/{view.prefix}"
            )
            return Outcome.SUCCEEDED
        line = capture_headline(connection, stack, report)
        console.print(f"[bold green]done:[/] {line.text()}", soft_wrap=True)
        return Outcome.SUCCEEDED
    console.print(
        f"[bold red]{view.status}:[/] {view.error or ''} {readable_cause(view.cause)}".rstrip(), soft_wrap=True
    )
    return {"FAILED": Outcome.FAILED, "TIMED_OUT": Outcome.TIMED_OUT}.get(view.status, Outcome.ABORTED)


def capture_headline(connection: Connection, stack: Stack, report: dict) -> Headline:
    summary = read_json(connection, stack.bucket, report["summary_key"])
    return headline(summary, f"s3://{stack.bucket}/{report['report_key']}")


def readable_cause(cause: str | None) -> str:
    """A Lambda error's cause is the runtime's JSON; people want its errorMessage."""
    if not cause:
        return ""
    try:
        return str(json.loads(cause).get("errorMessage", cause))
    except (ValueError, AttributeError):
        return cause


def _phase_of(state: str) -> int | None:
    for index, (_, states) in enumerate(PHASES):
        if state in states:
            return index
    return None


def _status_style(status: str) -> str:
    return {"RUNNING": "yellow", "SUCCEEDED": "green"}.get(status, "red")


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)  # the functions write UTC


def _clock(value: object) -> str:
    parsed = _parse(value)
    return parsed.strftime("%H:%M:%S UTC") if parsed else "?"
