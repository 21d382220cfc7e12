"""The few lines a person reads after an offline run (run.json has everything)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from mirrorcap.report.summary import CaptureSummary
from mirrorcap.report.text import http_errors, percent, thousands

from mirrorcap_tools.formatting import human_bytes


def _collapse(states: list[str]) -> str:
    """ResolveRequest -> ... with polling loops folded: `CheckCollectorReady x3`."""
    parts: list[str] = []
    for state in states:
        if parts and parts[-1].split(" x")[0] == state:
            count = int(parts[-1].split(" x")[1]) if " x" in parts[-1] else 1
            parts[-1] = f"{state} x{count + 1}"
        else:
            parts.append(state)
    return " -> ".join(parts)


def _short_link(line: str) -> str:
    """Presigned query strings are long and useless offline; keep where the link points."""
    return line.split("?X-Amz-", 1)[0] + " (presigned)" if "?X-Amz-" in line else line


def capture_headline(summary: CaptureSummary) -> str:
    """What an alarm about errors asks first: how many requests, how many failed, and where."""
    client_errors, server_errors = http_errors(summary)
    http = summary.http
    line = (
        f"{thousands(http.requests)} HTTP requests, 5xx {thousands(server_errors)}"
        f" ({percent(server_errors, http.responses)} of responses), 4xx {thousands(client_errors)}"
    )
    if http.error_paths:
        top = http.error_paths[0]
        line += f"; top error path: {top.label} ({thousands(top.count)})"
    return line


def _headlines(report_files: list[str]) -> list[str]:
    """One headline per capture report the run fetched (several when a schedule fanned out)."""
    summaries = [
        CaptureSummary.model_validate_json(Path(path).read_bytes())
        for path in report_files
        if Path(path).name == "summary.json"
    ]
    if len(summaries) == 1:
        return [f"  headline   {capture_headline(summaries[0])}"]
    return [f"  headline   {summary.capture_id}: {capture_headline(summary)}" for summary in summaries]


def human_summary(record: Any, run_json: Path) -> str:
    lines = [f"mirrorcap offline run of {record.input_file}"]
    status = record.status
    if record.error:
        status += f": {record.error}: {record.message}"
    lines.append(f"  status     {status}")
    # First after the status: it is what the run was for (the captured traffic, not the machinery).
    lines += _headlines(record.report_files)
    for execution in record.executions:
        steps = [s for s in execution.states if not s.startswith(("Wait", "Is", "OneCapture", "DidCapture"))]
        lines.append(f"  execution  {execution.name} {execution.status}")
        lines.append(f"             {_collapse(steps)}")
    lines.append(
        f"  cost       {record.state_transitions} state transitions, {record.lambda_invocations} Lambda invocations"
    )
    if record.readiness_checked_before_session is not None:
        answer = "yes" if record.readiness_checked_before_session else "NO"
        lines.append(f"  readiness  collector running + SSM agent online before the mirror session: {answer}")
    kinds = Counter(r["type"] for r in record.resources)
    created = ", ".join(f"{n} {kind}" for kind, n in kinds.items()) or "nothing"
    lines.append(f"  resources  created {created}; still existing at the end: {record.resources_left}")
    for obj in record.s3_objects:
        lines.append(f"  s3         {obj['key']} ({human_bytes(obj['bytes'])})")
    lines.append(f"  time       {record.virtual_seconds:.0f} s of emulated AWS time in {record.wall_seconds:.1f} s")
    for note in record.notes:
        lines.append(f"  note       {note}")
    for path in record.report_files:
        lines.append(f"  report     {path}")
    lines.append(f"  details    {run_json}")
    for notification in record.notifications:
        lines += ["", f"Notification sent: {notification['subject']}", ""]
        lines += [f"    {_short_link(line)}" for line in notification["message"].splitlines()]
    return "\n".join(lines)
