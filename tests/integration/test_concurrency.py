"""Bursts: one capture per source at a time, captures of different sources side by side."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from mirrorcap_tools.offline.runner import run_input
from mirrorcap_tools.offline.world import SOURCE_INSTANCES

from tests.support import event_text


def _outcomes(record) -> Counter:
    return Counter(
        "captured"
        if "CaptureSucceeded" in e.states
        else "already capturing"
        if "AlreadyCapturing" in e.states
        else e.status
        for e in record.executions
    )


@pytest.mark.parametrize("offline", [{"speedup": 100}], indirect=True)
def test_a_burst_of_one_alarm_yields_one_capture(offline) -> None:
    record = run_input(offline, [event_text("triggers/alarm.json")] * 6)

    assert record.status == "SUCCEEDED", record.message
    assert _outcomes(record) == {"captured": 1, "already capturing": 5}
    skipped = [e for e in record.executions if "AlreadyCapturing" in e.states]
    assert all(e.states[-1] == "AlreadyCapturing" and "LaunchCollector" not in e.states for e in skipped)
    assert "already capturing" in skipped[0].output["reason"]
    assert sum(r["type"] == "instance" for r in record.resources) == 1
    assert record.resources_left == 0, record.resources


# Virtual time runs from real time: a loaded machine must not age the locks (their lifetime is virtual).
@pytest.mark.parametrize("offline", [{"speedup": 100}], indirect=True)
def test_twenty_requests_on_five_sources(offline) -> None:
    sources = [s.instance_id for s in SOURCE_INSTANCES if s.instance_type != "t2.micro"]
    assert len(sources) == 5
    documents = [json.dumps({"instance_id": source, "duration_seconds": 60}) for source in sources for _ in range(4)]

    record = run_input(offline, documents)

    print(f"\nconcurrency: {len(documents)} executions on {len(sources)} sources -> {dict(_outcomes(record))}, "
          f"{record.resources_left} resources left")  # fmt: skip
    assert record.status == "SUCCEEDED", record.message
    assert _outcomes(record) == {"captured": 5, "already capturing": 15}
    captured = {e.output["instance_id"] for e in record.executions if "CaptureSucceeded" in e.states}
    assert captured == set(sources)
    quota_errors = [i for i in offline.aws.lambdas.invocations if i.error_type == "CaptureQuotaExceeded"]
    assert quota_errors == []
    assert record.resources_left == 0, [r for r in record.resources if r["exists_at_end"]]
