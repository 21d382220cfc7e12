"""Every trigger shape in events/triggers runs the real ASL offline to SUCCEEDED, leaving nothing."""

from __future__ import annotations

import pytest
from mirrorcap_tools.offline.runner import run_input

from tests.support import EVENTS, LONG_CAPTURE_SPEEDUP, TEST_SPEEDUP, event_text

TRIGGERS = sorted(p.name for p in (EVENTS / "triggers").glob("*.json"))
SPEEDUP = {"manual-long.json": LONG_CAPTURE_SPEEDUP}


@pytest.mark.parametrize(
    ("trigger", "offline"),
    [(trigger, {"speedup": SPEEDUP.get(trigger, TEST_SPEEDUP)}) for trigger in TRIGGERS],
    indirect=["offline"],
)
def test_trigger_captures_and_cleans_up(offline, trigger: str) -> None:
    record = run_input(offline, event_text(f"triggers/{trigger}"), input_file=trigger)

    assert record.status == "SUCCEEDED", (record.error, record.message)
    assert record.readiness_checked_before_session is True
    captures = [e for e in record.executions if "CaptureSucceeded" in e.states]
    assert captures, [e.states for e in record.executions]
    kinds = {r["type"] for r in record.resources}
    assert kinds == {"lock", "instance", "security-group", "traffic-mirror-target", "traffic-mirror-filter",
                     "traffic-mirror-session"}  # fmt: skip
    assert record.resources_left == 0, record.resources
    for capture in captures:
        artifacts = capture.output["artifacts"]
        assert artifacts["objects"], artifacts
        pcaps = [o["key"] for o in record.s3_objects if o["key"].endswith(".pcap")]
        assert any(key.startswith(artifacts["prefix"]) for key in pcaps)
        assert capture.output["capture_id"] in artifacts["prefix"]


def test_schedule_fans_out_one_execution_per_tagged_instance(offline) -> None:
    record = run_input(offline, event_text("triggers/schedule.json"))

    parent, *children = record.executions
    assert parent.states == ["ResolveRequest", "OneCaptureOrMany", "FanOut"]
    assert sorted(c.output["instance_id"] for c in children) == sorted(
        offline.sources[name] for name in ("web-1", "web-2")
    )
    assert all(child.name == child.output["capture_id"] for child in children)


# Slower virtual time here: the point is the order of events, which a loaded machine must not blur.
@pytest.mark.parametrize("offline", [{"registration_seconds": 400, "speedup": 500}], indirect=True)
def test_collector_waits_for_ssm_agent_before_the_session(offline) -> None:
    record = run_input(offline, event_text("triggers/manual.json"))

    states = record.executions[0].states
    session_at = states.index("CreateMirrorSession")
    polls_before = [s for s in states[:session_at] if s == "CheckCollectorReady"]
    # The agent registers 400 s after the instance runs: the first check (60 s after launch) finds it offline.
    assert len(polls_before) >= 2
    assert states[:4] == ["ResolveRequest", "OneCaptureOrMany", "LockSource", "LaunchCollector"]


def test_manual_filter_becomes_mirror_filter_rules(offline) -> None:
    from mirrorcap.models import ManualRequest

    request = ManualRequest.model_validate_json(event_text("triggers/manual.json"))
    record = run_input(offline, request.model_dump_json(exclude_none=True))

    capture = record.executions[0]
    assert capture.status == "SUCCEEDED"
    # 2 directions x 2 port entries; the whole filter is deleted again by teardown.
    assert len(request.filter.rules()) == 4
    assert record.resources_left == 0


def test_capture_ends_with_a_report_and_a_notification(offline, sample_pcap) -> None:
    record = run_input(offline, event_text("triggers/alarm.json"))

    report = record.executions[0].output["report"]
    keys = {o["key"] for o in record.s3_objects}
    assert {report["summary_key"], report["report_key"], report["decapsulated_key"]} <= keys
    (notification,) = record.notifications
    assert notification["subject"] == report["subject"]
    assert "3 packets" in notification["subject"]  # the conftest sample: three VXLAN packets
    assert "report:" in notification["message"] and "X-Amz-Signature" in notification["message"]


def test_a_failed_report_does_not_fail_the_capture(offline) -> None:
    from mirrorcap_tools.offline.faults import Fault, FaultPlan

    faults = FaultPlan([Fault("s3", "PutObject", "InternalError")])

    record = run_input(offline, event_text("triggers/alarm.json"), faults=faults)

    assert record.status == "SUCCEEDED"
    report = record.executions[0].output["report"]
    assert report["Error"] == "AwsRequestFailed" and "put_object: InternalError" in report["Cause"]
    assert record.resources_left == 0 and record.notifications == []


def test_the_demo_s_headline_shows_the_5xx_its_alarm_is_about(tmp_path) -> None:
    """`make demo`: the committed sample capture (web-1 answering checkouts with 503, see
    tools/mirrorcap_tools/offline/data/sample-capture.md) is what the alarm's report and headline show."""
    from mirrorcap_tools.offline.runner import run_file
    from mirrorcap_tools.offline.summary import human_summary

    record = run_file(EVENTS / "triggers" / "alarm.json", tmp_path, speedup=TEST_SPEEDUP)

    lines = human_summary(record, tmp_path / "run.json").splitlines()
    assert lines[1] == "  status     SUCCEEDED"
    assert lines[2] == (
        "  headline   14 HTTP requests, 5xx 5 (35.7% of responses), 4xx 2; top error path: 503 POST /api/checkout (4)"
    )
    (notification,) = record.notifications
    assert "HTTP 5xx 5, 4xx 2, TCP RST 1" in notification["subject"]
