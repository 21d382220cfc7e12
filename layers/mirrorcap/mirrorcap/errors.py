"""Domain exceptions. Each class name is an error name that the state machine's Retry/Catch match
(Lambda reports an unhandled exception's class name as the error), so rename with care: the ASL
structural test checks every `ErrorEquals` name against this module.
"""

from __future__ import annotations


class MirrorcapError(Exception):
    """Base class; never raised itself."""


class MirrorcapMisconfigured(MirrorcapError):
    """The stack's settings (environment) are missing or invalid; the message names the parameter."""


# --- The request: raised before anything is created -------------------------------------------------


class InvalidCaptureRequest(MirrorcapError):
    """The trigger's input is malformed or out of range. The message names the field."""


class CompositeAlarmNotSupported(InvalidCaptureRequest):
    """A composite alarm has no metrics, so it names no instance to capture."""


class InstanceNotFound(InvalidCaptureRequest):
    """The instance id does not exist in this account and region."""


class UnsupportedInstance(InvalidCaptureRequest):
    """Traffic Mirroring cannot use this instance as a source (type, state or interface)."""


class NoInstancesMatched(InvalidCaptureRequest):
    """A scheduled sample's tag selector matched no running instance."""


class CaptureQuotaExceeded(InvalidCaptureRequest):
    """AWS would refuse the mirror session (sessions per interface, rules per filter, ...)."""


class SourceAlreadyCapturing(MirrorcapError):
    """Another capture holds this source interface's lock; this request ends without creating anything."""


# --- Transient: the state machine retries these with backoff ------------------------------------------


class AwsThrottled(MirrorcapError):
    """AWS answered RequestLimitExceeded/Throttling; retrying later is the cure."""


class CaptureStillRunning(MirrorcapError):
    """The capture command has not finished yet (the collector is still uploading)."""


# --- Failures after resources exist: caught into teardown ---------------------------------------------


class CollectorLaunchFailed(MirrorcapError):
    """The collector instance could not be launched or stopped before it was ready."""


class CollectorNotReady(MirrorcapError):
    """The collector did not become running with its SSM agent online within the readiness timeout."""


class MirrorSetupFailed(MirrorcapError):
    """AWS refused to create the mirror target, filter or session."""


class CaptureCommandFailed(MirrorcapError):
    """The capture command on the collector failed, timed out or delivered no manifest."""


class NothingToReport(MirrorcapError):
    """The capture delivered no pcap file, so there is no report to make (the capture itself succeeded)."""


class TeardownIncomplete(MirrorcapError):
    """Some resources could not be deleted yet; teardown is retried (and the sweeper is the backstop)."""
