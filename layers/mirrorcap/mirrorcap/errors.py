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
    """AWS answered RequestLimitExceeded/Throttling after the SDK's own retries; retrying later is the cure.

    Not an AwsRequestFailed on purpose: a step that handles some refusals never swallows throttling.
    """


class CaptureStillRunning(MirrorcapError):
    """The capture command has not finished yet (the collector is still uploading)."""


# --- What the AWS adapters raise (mirrorcap.aws translates every ClientError into one of these) ---------


class AwsRequestFailed(MirrorcapError):
    """AWS refused or failed a call. Steps decide what a code means for them; the rest fails the step
    (and, after the first resource exists, the state machine's Catch tears down)."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.operation = operation
        self.code = code
        self.aws_message = message

    def __reduce__(self) -> tuple:  # keep the three fields when pickled (copied across processes)
        return (type(self), (self.operation, self.code, self.aws_message))

    @property
    def not_found(self) -> bool:
        """AWS says the resource does not exist. EC2's error-code page spells the mirroring ones
        `InvalidTrafficMirrorFilterNotFound` and even `InvalidTrafficMirrorTargetNoFound`, while SDKs use
        `InvalidTrafficMirrorFilterId.NotFound`: every spelling counts (docs/aws-facts.md#traffic-mirroring-errors)."""
        return self.code in ("404", "NoSuchKey") or self.code.endswith(
            ("NotFound", "NotFoundException", "NoFound", "DoesNotExist")
        )


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
