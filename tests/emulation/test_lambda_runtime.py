"""Lambda Invoke runs the registered handler in-process (emulation/lambda_runtime.py) and reports a raised
exception as the Python runtime does, so that Step Functions' Retry/Catch match on the class name."""

from __future__ import annotations

import json


class CaptureWindowTooLong(Exception):
    """A handler's own error: its class name is the error name the workflow's ASL catches."""


def _refuse(event, context):
    raise CaptureWindowTooLong(f"a window of {event['seconds']} s is over the limit")


def _echo(event, context):
    return {"event": event, "function": context.function_name}


def _invoke(lambda_client, name: str, event: dict | None = None) -> tuple[dict, object]:
    response = lambda_client.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode())
    return response, json.loads(response["Payload"].read())


# --- Invoke -------------------------------------------------------------------------------------------------


def test_a_handlers_return_value_is_the_payload(lambda_client, deploy_function) -> None:
    deploy_function("echo", _echo)

    response, payload = _invoke(lambda_client, "echo", {"seconds": 60})

    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert payload == {"event": {"seconds": 60}, "function": "echo"}


def test_a_function_is_invoked_by_its_arn_too(lambda_client, deploy_function) -> None:
    arn = deploy_function("echo", _echo)

    _, payload = _invoke(lambda_client, arn)

    assert payload["function"] == "echo"


def test_a_raised_exception_is_an_unhandled_function_error(lambda_client, deploy_function) -> None:
    deploy_function("refuse", _refuse)

    response, _ = _invoke(lambda_client, "refuse", {"seconds": 9000})

    # Like the real service: the call succeeds (200) and the function error is in a header.
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"


def test_the_error_payload_names_the_exception_class_and_message(lambda_client, deploy_function) -> None:
    deploy_function("refuse", _refuse)

    _, payload = _invoke(lambda_client, "refuse", {"seconds": 9000})

    assert payload["errorType"] == "CaptureWindowTooLong"
    assert payload["errorMessage"] == "a window of 9000 s is over the limit"
    assert isinstance(payload["stackTrace"], list)


def test_an_invocation_without_a_payload_gets_an_empty_event(lambda_client, deploy_function) -> None:
    deploy_function("echo", _echo)

    payload = json.loads(lambda_client.invoke(FunctionName="echo")["Payload"].read())

    assert payload["event"] == {}


def test_a_result_json_cannot_encode_is_a_marshal_error(lambda_client, deploy_function) -> None:
    deploy_function("unencodable", lambda event, context: {"seen": {1, 2}})

    response, payload = _invoke(lambda_client, "unencodable")

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.MarshalError"


def test_a_payload_that_is_not_json_is_refused(lambda_client, deploy_function, error_code) -> None:
    deploy_function("echo", _echo)

    assert (
        error_code(lambda_client.invoke, FunctionName="echo", Payload=b"{not json") == "InvalidRequestContentException"
    )


# --- through Step Functions ------------------------------------------------------------------------------------


def _task_machine(function_arn: str, catch: str, *, retry_attempts: int = 0) -> dict:
    task = {
        "Type": "Task",
        "Resource": function_arn,
        "Catch": [{"ErrorEquals": [catch], "ResultPath": "$.error", "Next": "Caught"}],
        "End": True,
    }
    if retry_attempts:
        task["Retry"] = [{"ErrorEquals": ["CaptureWindowTooLong"], "IntervalSeconds": 1, "MaxAttempts": retry_attempts}]
    return {"StartAt": "Capture", "States": {"Capture": task, "Caught": {"Type": "Pass", "End": True}}}


def test_a_task_passes_on_the_handlers_result(deploy_function, run_state_machine) -> None:
    arn = deploy_function("echo", _echo)

    execution = run_state_machine(_task_machine(arn, "CaptureWindowTooLong"), json.dumps({"seconds": 60}))

    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"]) == {"event": {"seconds": 60}, "function": "echo"}


def test_catch_matches_the_exception_class_name(deploy_function, run_state_machine) -> None:
    arn = deploy_function("refuse", _refuse)

    execution = run_state_machine(_task_machine(arn, "CaptureWindowTooLong"), json.dumps({"seconds": 9000}))

    assert execution["status"] == "SUCCEEDED"
    error = json.loads(execution["output"])["error"]
    assert error["Error"] == "CaptureWindowTooLong"
    assert json.loads(error["Cause"])["errorMessage"] == "a window of 9000 s is over the limit"


def test_catch_on_another_name_lets_the_error_fail_the_execution(deploy_function, run_state_machine) -> None:
    arn = deploy_function("refuse", _refuse)

    execution = run_state_machine(_task_machine(arn, "SourceNotSupported"), json.dumps({"seconds": 9000}))

    assert execution["status"] == "FAILED"
    assert execution["error"] == "CaptureWindowTooLong"


def test_retry_matches_the_exception_class_name(aws, deploy_function, run_state_machine) -> None:
    arn = deploy_function("refuse", _refuse)

    execution = run_state_machine(
        _task_machine(arn, "CaptureWindowTooLong", retry_attempts=2), json.dumps({"seconds": 9000})
    )

    assert execution["status"] == "SUCCEEDED"  # caught after the retries
    attempts = [i for i in aws.lambdas.invocations if i.function_name == "refuse"]
    assert [i.error_type for i in attempts] == ["CaptureWindowTooLong"] * 3
