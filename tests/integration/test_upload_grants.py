"""The collector has no S3 permission: it uploads with a grant (a presigned POST) that expires within the
hour, so an hour-long capture only delivers because RenewUploadGrant hands it a new one on the way.
The emulated S3 checks each upload against its grant (mirrorcap_tools.emulation.s3_post)."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from mirrorcap.models import CaptureCommand
from mirrorcap.runtime import now
from mirrorcap.steps import start_capture
from mirrorcap_tools.offline.runner import run_input

from tests.support import LONG_CAPTURE_SPEEDUP, event_text


@pytest.mark.parametrize("offline", [{"speedup": LONG_CAPTURE_SPEEDUP}], indirect=True)
def test_an_hour_long_capture_renews_its_grant_and_delivers(offline) -> None:
    record = run_input(offline, event_text("triggers/manual-long.json"))

    assert record.status == "SUCCEEDED", (record.error, record.cause)
    states = Counter(record.executions[0].states)
    # Grants last 59 minutes and are renewed 15 minutes before they expire: once in an hour's window,
    # and that grant outlasts the script's last uploads.
    assert states["RenewUploadGrant"] == 1
    assert states["WaitCaptureWindow"] == 2
    assert record.resources_left == 0
    assert any(o["key"].endswith("manifest.json") for o in record.s3_objects)


def test_a_short_capture_never_renews(offline) -> None:
    record = run_input(offline, event_text("triggers/alarm.json"))

    assert record.status == "SUCCEEDED"
    assert "RenewUploadGrant" not in record.executions[0].states


def test_without_renewal_s3_refuses_the_last_uploads_and_the_capture_fails_cleanly(offline, monkeypatch) -> None:
    def never_renew(command: CaptureCommand) -> CaptureCommand:
        wait = math.ceil((command.window_ends_at - now()).total_seconds())
        return command.model_copy(update={"wait_seconds": max(0, wait), "renew_grant": False})

    monkeypatch.setattr(start_capture, "plan_next_wait", never_renew)

    record = run_input(offline, event_text("triggers/manual-long.json"))

    assert record.status == "FAILED"
    assert record.error == "CaptureCommandFailed"
    assert "Policy expired" in record.cause
    assert "RenewUploadGrant" not in record.executions[0].states
    assert record.resources_left == 0
