"""One module per Task state of statemachine/capture.asl.json, named after it, in workflow order:

    ResolveRequest -> (FanOut) -> LockSource -> LaunchCollector -> CheckCollectorReady (polled)
    -> CreateMirrorSession -> StartCapture -> (RenewUploadGrant) -> CollectCapture
    -> TeardownCapture (also on every failure) -> ReportCapture;  SweepOrphans runs on a schedule.

The state `LockSource` is `functions/lock_source/`, `mirrorcap.steps.lock_source.lock_source()`, its models
`LockSourceInput`/`LockSourceOutput` (mirrorcap.models) and its metric `LockSourceSucceeded`. Steps hold
the decisions; every AWS call is in mirrorcap.aws.
"""
