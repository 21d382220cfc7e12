"""The AWS adapters: the only modules that call boto3.

One module per kind of thing mirrorcap touches (mirroring, instances, commands, locks, artifacts,
executions, notifications). Each public function is one AWS call (or one paginated listing) with its
method named literally, so `grep` finds every call the code makes, and is wrapped by
`translated_errors`, the one place where botocore's ClientError becomes a domain error: throttling
becomes AwsThrottled (the state machine retries it), everything else AwsRequestFailed with AWS's code.
Steps (mirrorcap.steps) hold the decisions and are tested with fakes of these functions.
"""
