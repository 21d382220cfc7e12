"""When the workflow renews a collector's upload grant (mirrorcap.steps.start_capture.plan_next_wait): the collector
must hold a valid grant from the capture's start until the script's last upload, whatever the duration,
and the WaitCaptureWindow / RenewUploadGrant loop must end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from mirrorcap import runtime
from mirrorcap.collector.command import CaptureScriptSpec, execution_timeout_seconds
from mirrorcap.collector.grant import GRANT_SECONDS, RENEW_AHEAD_SECONDS
from mirrorcap.models import CaptureCommand
from mirrorcap.steps.start_capture import plan_next_wait

START = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    clock = Clock()
    runtime.configure(clock=clock)
    yield clock
    runtime.configure()


def script_spec(duration: int, **options) -> CaptureScriptSpec:
    return CaptureScriptSpec(
        capture_id="mc-test", bucket="mirrorcap-test", key_prefix="captures/mc-test/", duration_seconds=duration, vni=1,
        **options,
    )  # fmt: skip


def run_window(clock: Clock, duration: int, **options) -> tuple[list[datetime], CaptureCommand]:
    """Follow the state machine: plan, wait, renew while asked; return the renewal times and the last plan."""
    spec = script_spec(duration, **options)
    command = plan_next_wait(
        CaptureCommand(
            command_id="c",
            started_at=START,
            window_ends_at=START + timedelta(seconds=duration),
            finishes_by=START + timedelta(seconds=execution_timeout_seconds(spec)),
            grant_expires_at=START + timedelta(seconds=GRANT_SECONDS),
            wait_seconds=0,
            renew_grant=False,
        )
    )
    renewals = []
    while True:
        clock.now += timedelta(seconds=command.wait_seconds)
        if not command.renew_grant:
            return renewals, command
        # The collector needs the new grant before the old one runs out.
        assert clock.now <= command.grant_expires_at - timedelta(seconds=RENEW_AHEAD_SECONDS)
        renewals.append(clock.now)
        assert len(renewals) < 100, "the renewal loop does not end"
        command = plan_next_wait(
            command.model_copy(update={"grant_expires_at": clock.now + timedelta(seconds=GRANT_SECONDS)})
        )


@pytest.mark.parametrize("duration", [10, 300, 1800, 2600])
def test_captures_of_half_an_hour_never_renew(clock, duration):
    renewals, command = run_window(clock, duration)
    assert renewals == []
    assert clock.now == command.window_ends_at
    assert command.grant_expires_at >= command.finishes_by


def test_an_hour_renews_once_fifteen_minutes_before_the_first_grant_expires(clock):
    renewals, command = run_window(clock, 3600)
    assert renewals == [START + timedelta(seconds=GRANT_SECONDS - RENEW_AHEAD_SECONDS)]
    assert clock.now == command.window_ends_at
    assert command.grant_expires_at >= command.finishes_by


def test_a_grant_that_would_expire_during_the_last_uploads_is_renewed_at_the_window_s_end(clock):
    # The window ends before the grant is due, but with 500 MB files the script may still be uploading
    # when it expires.
    renewals, command = run_window(clock, 2500, rotate_megabytes=500)
    assert renewals == [command.window_ends_at]
    assert command.grant_expires_at >= command.finishes_by


@pytest.mark.parametrize("duration", [2641, 3599, 7200, 86400])
def test_any_duration_is_covered_until_the_last_upload(clock, duration):
    renewals, command = run_window(clock, duration)
    assert renewals, duration
    assert clock.now == command.window_ends_at
    assert command.grant_expires_at >= command.finishes_by
    gaps = [b - a for a, b in zip([START, *renewals], renewals, strict=False)]
    assert all(gap <= timedelta(seconds=GRANT_SECONDS - RENEW_AHEAD_SECONDS) for gap in gaps)


def test_one_grant_outlasts_the_script_s_last_uploads_with_the_workflow_s_rotation():
    """A grant renewed at the window's end must cover what follows: the script's finish budget."""
    spec = script_spec(60)  # what StartCapture sends: the default rotation
    assert execution_timeout_seconds(spec) - spec.duration_seconds < GRANT_SECONDS - RENEW_AHEAD_SECONDS
